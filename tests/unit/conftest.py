from tests.fakes.fixtures import _clean_env, fake_nvml  # noqa: F401
