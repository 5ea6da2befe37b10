"""The modules' unit tests share the fake gateway's fixture."""

from unit.plugins.modules.fake_gateway import fake_gateway  # noqa: F401 pylint: disable=unused-import
