import pytest

from config.settings import SettingsError, load_settings


def test_embedded_defaults_need_no_server(tmp_path):
    s = load_settings({"NOTIFIER_HOME": str(tmp_path)})
    assert s.db_url == f"sqlite:///{tmp_path / 'notifier.db'}"
    assert s.broker == "filesystem://"
    assert s.uses_filesystem_broker


def test_urls_switch_backends_without_code_change():
    s = load_settings(
        {
            "NOTIFIER_DATABASE_URL": "postgresql+psycopg://u@h/db",
            "NOTIFIER_BROKER_URL": "redis://h:6379/0",
        }
    )
    assert s.db_url.startswith("postgresql+psycopg://")
    assert not s.uses_filesystem_broker


def test_typed_values_and_clear_errors():
    assert load_settings({"NOTIFIER_PUSH_CONCURRENCY": "7"}).push_concurrency == 7
    with pytest.raises(SettingsError, match="NOTIFIER_PUSH_CONCURRENCY='many'"):
        load_settings({"NOTIFIER_PUSH_CONCURRENCY": "many"})
