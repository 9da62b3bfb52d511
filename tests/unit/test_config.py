import pytest

from ragtune.config import Settings, load_settings
from ragtune.errors import ConfigError


def test_defaults():
    s = load_settings(env={})
    assert s == Settings()
    assert s.retrieval.mode == "hybrid" and s.generator.model == "gemma-3-270m"


def test_precedence_file_env_overrides(tmp_path):
    path = tmp_path / "ragtune.toml"
    path.write_text('[retrieval]\nk = 8\nmode = "dense"\n[generator]\nmax_tokens = 100\n')
    s = load_settings(path, env={"RAGTUNE_RETRIEVAL_K": "9", "RAGTUNE_GENERATOR_BASE_URL": "u"},
                      overrides={"retrieval": {"mode": "lexical", "k": None}})
    assert s.retrieval.k == 9  # env over file; None override ignored
    assert s.retrieval.mode == "lexical"  # override over file
    assert s.generator.max_tokens == 100 and s.generator.base_url == "u"


def test_unknown_names_list_valid_ones(tmp_path):
    path = tmp_path / "r.toml"
    path.write_text("[retrival]\nk = 1\n")
    with pytest.raises(ConfigError, match="unknown section.*retrieval"):
        load_settings(path, env={})
    path.write_text("[retrieval]\nkk = 1\n")
    with pytest.raises(ConfigError, match="unknown setting retrieval.kk; valid: .*candidates"):
        load_settings(path, env={})


def test_bad_values_and_files(tmp_path):
    with pytest.raises(ConfigError, match="retrieval.k"):
        load_settings(env={"RAGTUNE_RETRIEVAL_K": "many"})
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "missing.toml", env={})
    bad = tmp_path / "bad.toml"
    bad.write_text("[x")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(bad, env={})


@pytest.mark.parametrize("body, expected", [
    ("[retrieval]\nk = [3]\n", "retrieval.k in .*: cannot read \\[3\\].*a list"),
    ("[retrieval]\nk = 2.9\n", "retrieval.k in .*not a whole number"),
    ("[retrieval]\nk = true\n", "retrieval.k in .*a boolean"),
    ("[chunking]\noverlap = 250\n", "chunking.overlap \\(--overlap\\)"),
])
def test_wrong_types_name_the_setting(tmp_path, body, expected):
    path = tmp_path / "ragtune.toml"
    path.write_text(body)
    with pytest.raises(ConfigError, match=expected):
        load_settings(path, env={})


def test_unreadable_config_files(tmp_path):
    path = tmp_path / "utf16.toml"
    path.write_text("[retrieval]\nk = 3\n", encoding="utf-16")
    with pytest.raises(ConfigError, match="not UTF-8.*save it as UTF-8"):
        load_settings(path, env={})
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_settings(tmp_path, env={})


def test_api_key_is_masked():
    s = load_settings(env={"RAGTUNE_GENERATOR_API_KEY": "secret"})
    assert s.to_dict()["generator"]["api_key"] == "***"


def test_numeric_settings_are_checked_with_their_range_in_the_error():
    for section, key, value, words in (
            ("retrieval", "k", -4, "at least 1"), ("retrieval", "candidates", 0, "at least 1"),
            ("retrieval", "mmr_lambda", 5, "at most 1"),
            ("retrieval", "dense_weight", 1.5, "between 0 and 1"),
            ("ingest", "batch_chunks", 0, "at least 1"),
            ("generator", "temperature", -3, "between 0 and 2"),
            ("generator", "max_tokens", 0, "at least 1"),
            ("generator", "prompt_cache_mb", -1, "at least 0"),
            ("generator", "citations", "loose", "inline, strict or model")):
        with pytest.raises(ConfigError, match=f"{section}.{key} must be {words}"):
            load_settings(env={}, overrides={section: {key: value}})


def test_unknown_ragtune_variables_are_errors_like_unknown_toml_keys():
    with pytest.raises(ConfigError, match="unknown environment variable RAGTUNE_RETRIEVAL_KK"):
        load_settings(env={"RAGTUNE_RETRIEVAL_KK": "4"})
    with pytest.raises(ConfigError, match="RAGTUNE_GENERATOR"):
        load_settings(env={"RAGTUNE_GENERATR_MODEL": "x"})
    # the variables that are not settings are read where they are used
    settings = load_settings(env={"RAGTUNE_DATA": "/data", "RAGTUNE_API_KEYS": "a",
                                  "RAGTUNE_RETRIEVAL_K": "4", "OTHER": "x"})
    assert settings.retrieval.k == 4
