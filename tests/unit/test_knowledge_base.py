import pytest

from ragtune import KnowledgeBase
from ragtune.errors import ConfigError, EmbedderMismatchError, KnowledgeBaseError
from ragtune.testing import FakeEmbedder, FakeGenerator


@pytest.fixture
def corpus(tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "vacation.txt").write_text(
        "Every employee receives 25 days of paid vacation per year. Unused vacation days can be "
        "carried over until March 31 of the following year.")
    (folder / "tower.md").write_text(
        "# Paris\n\nThe Eiffel Tower was completed in 1889. It is 330 metres tall.\n\n"
        "## Museums\n\nThe Louvre is the most visited museum in the world.")
    (folder / ".hidden.txt").write_text("secret")
    (folder / "image.png").write_bytes(b"\x89PNG")
    return folder


@pytest.fixture
def kb(tmp_path, corpus):
    base = KnowledgeBase.create(tmp_path / "kb", embedder=FakeEmbedder(),
                                generator=FakeGenerator())
    base.ingest([corpus])
    return base


def test_ingest_records_sources_and_chunks(kb, corpus):
    sources = {r.source.rsplit("/", 1)[-1]: r for r in kb.sources()}
    assert set(sources) == {"vacation.txt", "tower.md"}  # hidden and .png skipped
    assert kb.store.count() == sum(len(r.chunk_ids) for r in sources.values())
    assert (kb.path / "manifest.json").exists() and (kb.path / "lexical" / "ids.json").exists()


@pytest.mark.parametrize("mode", ["hybrid", "dense", "lexical"])
def test_search_modes_find_the_right_file(kb, mode):
    hits = kb.search("paid vacation days per year", k=2, mode=mode)
    assert hits[0].chunk.source.endswith("vacation.txt")
    assert hits == sorted(hits, key=lambda h: -h.score)


def test_hybrid_scores_fuse_both_lists(kb):
    from dataclasses import replace

    query = "Eiffel Tower completed"
    hits = kb.search(query, k=20)
    assert all(h.dense_score is not None and h.lexical_score is not None for h in hits)
    # zscore (default): each score standardised over the whole collection
    vector = kb.embedder.embed([query])[0]
    dense_mean, dense_std = kb.reader.moments(vector)
    cosines = kb.reader.vectors(kb.reader.ids) @ vector
    assert (dense_mean, dense_std) == pytest.approx((cosines.mean(), cosines.std()), abs=1e-5)
    bm25 = kb.lexical.scores(query)
    w = kb.settings.retrieval.dense_weight
    for hit in hits:
        expected = (w * (hit.dense_score - dense_mean) / dense_std
                    + (1 - w) * (hit.lexical_score - bm25.mean()) / bm25.std())
        assert hit.score == pytest.approx(expected, rel=1e-4)
        assert hit.dense_score == pytest.approx(float(
            kb.reader.vectors([hit.chunk.id])[0] @ vector), abs=1e-5)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    kb.settings = replace(kb.settings, retrieval=replace(kb.settings.retrieval, fusion="score",
                                                         dense_weight=0.5))
    assert kb.search(query, k=1)[0].score == pytest.approx(1.0)  # 0.5 * 1 + 0.5 * 1
    kb.settings = replace(kb.settings, retrieval=replace(kb.settings.retrieval, fusion="rrf"))
    assert kb.search("Eiffel Tower completed", k=1)[0].score == pytest.approx(2 / 61)
    kb.settings = replace(kb.settings, retrieval=replace(kb.settings.retrieval, fusion="magic"))
    with pytest.raises(ConfigError, match="valid choices: zscore, score, rrf, minmax"):
        kb.search("x")


def test_heading_context_is_searchable(kb):
    hit = kb.search("Museums Louvre", k=1, mode="lexical")[0]
    assert hit.chunk.heading == "Paris › Museums" and "Louvre" in hit.chunk.text


def test_ask_answers_with_cited_file(kb):
    answer = kb.ask("How many days of paid vacation does an employee get?")
    assert "25 days" in answer.text
    assert answer.citations and answer.citations[0].chunk.source.endswith("vacation.txt")
    assert answer.citations[0].supported
    assert set(answer.timings) >= {"retrieve_ms", "generate_ms", "total_ms"}
    data = answer.to_dict()
    assert set(data) >= {"answer", "citations", "dropped", "timings", "prompt_tokens",
                         "completion_tokens"}
    assert set(data["citations"][0]) >= {"n", "source", "page", "text", "score", "supported"}


def test_ask_records_what_did_not_fit(tmp_path, corpus):
    base = KnowledgeBase.create(tmp_path / "kb2", embedder=FakeEmbedder(),
                                generator=FakeGenerator(context_window=80))
    base.ingest([corpus])
    answer = base.ask("vacation tower museum", k=3, max_tokens=20)
    assert answer.dropped and answer.prompt_tokens + 20 <= 80


def test_reingest_unchanged_embeds_nothing(kb, corpus):
    embedder = kb.embedder
    before = embedder.texts_embedded
    report = kb.ingest([corpus])
    assert len(report.unchanged) == 2 and report.chunks_embedded == 0
    assert embedder.texts_embedded == before


def test_edit_and_delete_are_synced(kb, corpus):
    (corpus / "vacation.txt").write_text("Every employee receives 30 days of paid vacation.")
    (corpus / "tower.md").unlink()
    report = kb.ingest([corpus])
    assert len(report.updated) == 1 and len(report.removed) == 1
    assert [r.source.rsplit("/", 1)[-1] for r in kb.sources()] == ["vacation.txt"]
    texts = [c.text for c in kb.store.scan()]
    assert texts == ["Every employee receives 30 days of paid vacation."]
    assert kb.search("Eiffel", mode="lexical") == []


def test_bad_files_are_reported_and_the_rest_ingested(tmp_path, corpus):
    (corpus / "broken.pdf").write_bytes(b"%PDF-1.4 not really")
    (corpus / "empty.txt").write_text("")
    base = KnowledgeBase.create(tmp_path / "kb3", embedder=FakeEmbedder())
    report = base.ingest([corpus, tmp_path / "missing.txt"])
    failed = {p.rsplit("/", 1)[-1]: r for p, r in report.failed}
    assert set(failed) == {"broken.pdf", "empty.txt", "missing.txt"}
    assert "no such file" in failed["missing.txt"]
    assert len(report.added) == 2 and report.exit_code == 2


def test_files_that_break_their_loader_are_skipped_and_named(tmp_path, corpus):
    (corpus / "odd.txt").write_bytes(b"\xff\xfeh\x00i\x00\x00")  # UTF-16 BOM, odd length
    (corpus / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    (corpus / "bad.docx").write_bytes(_docx_with_broken_xml())
    base = KnowledgeBase.create(tmp_path / "kb4", embedder=FakeEmbedder())
    report = base.ingest([corpus])
    failed = {p.rsplit("/", 1)[-1]: r for p, r in report.failed}
    assert set(failed) == {"odd.txt", "deep.json", "bad.docx"}
    assert "UTF-16" in failed["odd.txt"] and "UTF-8" in failed["odd.txt"]
    assert "nested too deeply" in failed["deep.json"]
    assert "docx" in failed["bad.docx"]
    # the good files were ingested and committed
    assert len(report.added) == 2
    assert len(KnowledgeBase.open(tmp_path / "kb4", embedder=FakeEmbedder()).sources()) == 2


def test_a_loader_crash_is_reported_not_raised(tmp_path, corpus, monkeypatch):
    from ragtune.index import ingest

    def explode(path, source):
        if path.name == "tower.md":
            raise IndexError("list index out of range")
        return real(path, source)

    real = ingest.load
    monkeypatch.setattr(ingest, "load", explode)
    report = KnowledgeBase.create(tmp_path / "kb5", embedder=FakeEmbedder()).ingest([corpus])
    [(path, reason)] = report.failed
    assert path.endswith("tower.md") and "IndexError" in reason
    assert [r.rsplit("/", 1)[-1] for r in report.added] == ["vacation.txt"]


def _docx_with_broken_xml():
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr("[Content_Types].xml", "<Types><unclosed>")
    return buffer.getvalue()


def test_bad_chunk_settings_are_refused_before_anything_is_written(tmp_path):
    from ragtune.config import load_settings

    with pytest.raises(ConfigError, match=r"chunking.overlap \(--overlap\).*below.*200"):
        load_settings(env={}, overrides={"chunking": {"overlap": 300}})
    with pytest.raises(ConfigError, match="--chunk-tokens"):
        load_settings(env={}, overrides={"chunking": {"max_tokens": 0}})
    assert not (tmp_path / "kb6").exists()


def test_kb_does_not_index_itself(tmp_path, corpus):
    base = KnowledgeBase.create(corpus / "kb", embedder=FakeEmbedder())
    base.ingest([corpus])
    base.ingest([corpus])
    assert all("/kb/" not in r.source for r in base.sources())


def test_embedder_mismatch_is_refused(kb):
    with pytest.raises(EmbedderMismatchError, match="ragtune kb reembed"):
        KnowledgeBase.open(kb.path, embedder=FakeEmbedder(name="other"))
    with pytest.raises(EmbedderMismatchError, match="32-d"):
        KnowledgeBase.open(kb.path, embedder=FakeEmbedder(dimension=32))


def test_open_missing_and_create_in_non_empty_folder(tmp_path):
    with pytest.raises(KnowledgeBaseError, match="ragtune ingest PATH --kb"):
        KnowledgeBase.open(tmp_path / "nothing")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "file.txt").write_text("x")
    with pytest.raises(KnowledgeBaseError, match="non-empty folder"):
        KnowledgeBase.create(tmp_path / "full", embedder=FakeEmbedder())


def test_bad_queries(kb):
    with pytest.raises(ConfigError, match="empty"):
        kb.search("  ")
    with pytest.raises(ConfigError, match="valid choices: hybrid, dense, lexical"):
        kb.search("x", mode="fuzzy")


def test_dense_list_is_ignored_for_a_language_the_embedder_lacks(tmp_path):
    docs = tmp_path / "zh"
    docs.mkdir()
    (docs / "a.txt").write_text("巴黎是法国的首都，埃菲尔铁塔建于1889年。")
    (docs / "b.txt").write_text("柏林是德国的首都。")
    embedder = FakeEmbedder()
    embedder.languages = ("en",)
    base = KnowledgeBase.create(tmp_path / "kb", embedder=embedder)
    base.ingest([docs])
    calls = embedder.calls
    hits = base.search("埃菲尔铁塔是哪一年建成的？", k=2)
    assert hits[0].chunk.source.endswith("a.txt")
    assert all(h.dense_score is None for h in hits) and embedder.calls == calls
    assert base.search("Paris tower", k=1)[0].dense_score is not None


def test_auto_precision_follows_the_stored_vectors(tmp_path, monkeypatch):
    import json
    from dataclasses import replace

    from ragtune import knowledge_base
    from ragtune.config import Settings

    base = KnowledgeBase.create(tmp_path / "kb7", embedder=FakeEmbedder())
    manifest = json.loads((base.path / "manifest.json").read_text())
    assert "precision" not in manifest["embedder"]  # an embedder without the setting
    # a manifest without it is from before the setting existed: embedded in fp32
    (base.path / "manifest.json").write_text(json.dumps(manifest))
    old = KnowledgeBase.open(base.path, embedder=FakeEmbedder())
    assert old.manifest.embedder_precision == "fp32" and old._precision() == "fp32"
    old.manifest.embedder_precision = "int8"
    monkeypatch.setattr(knowledge_base, "int8_supported", lambda: True)
    assert old._precision() == "int8"
    monkeypatch.setattr(knowledge_base, "int8_supported", lambda: False)
    assert old._precision() == "fp32"  # int8 vectors, but this CPU cannot compute int8
    settings = Settings()
    old.settings = replace(settings, embedder=replace(settings.embedder, precision="int8"))
    assert old._precision() == "int8"  # a precision named in the settings wins


def test_k_below_one_is_an_error_not_a_silent_default(kb):
    for k in (0, -1):
        with pytest.raises(ConfigError, match="at least 1"):
            kb.search("vacation", k=k)
        with pytest.raises(ConfigError, match="at least 1"):
            kb.ask("How many vacation days?", k=k)
