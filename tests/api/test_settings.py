"""Settings come from ONEMAP_* variables, passed in, never read at import."""

from pathlib import Path

from api.settings import Settings


def test_database_url_from_environment():
    s = Settings.from_env({"ONEMAP_DATABASE": "postgresql://u@h:5432/county", "ONEMAP_SECRET": "s3"})
    assert s.database == "postgresql://u@h:5432/county"
    assert s.secret == "s3"


def test_sample_dir_names_the_default_database():
    s = Settings.from_env({"ONEMAP_SAMPLE_DIR": "/srv/county"})
    assert s.database == str(Path("/srv/county") / "county.gpkg")


def test_explicit_override_wins_and_none_is_ignored():
    s = Settings.from_env({"ONEMAP_DATABASE": "a.gpkg"}, database="b.gpkg", mqtt_url=None)
    assert s.database == "b.gpkg"
    assert s.mqtt_url is None


def test_each_process_gets_its_own_random_secret_when_none_is_set():
    assert Settings.from_env({}).secret != Settings.from_env({}).secret


def test_allowed_hosts_are_a_comma_separated_list_and_default_to_none():
    s = Settings.from_env({"ONEMAP_ALLOWED_HOSTS": " map.county.lan, 10.0.0.5:8000 ,,"})
    assert s.allowed_hosts == ("map.county.lan", "10.0.0.5:8000")
    assert Settings.from_env({}).allowed_hosts is None  # None: the listen host, localhost and 127.0.0.1


def test_onemap_jobs_turns_the_background_jobs_off_and_on():
    assert Settings.from_env({"ONEMAP_JOBS": "0"}).jobs is False
    assert Settings.from_env({"ONEMAP_JOBS": "1"}).jobs is True
    assert Settings.from_env({"ONEMAP_JOBS": "off"}).jobs is False
