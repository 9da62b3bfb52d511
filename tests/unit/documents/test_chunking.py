from ragtune.documents.chunking import chunk_document, context_line, pack, split_sentences
from ragtune.types import Document


def words(texts):
    return [len(t.split()) for t in texts]


def sentences(text):
    return [text[s:e] for s, e in split_sentences(text)]


def test_english_sentences_and_abbreviations():
    text = "Dr. Smith arrived, e.g. at noon. It rained! Did it stop? Yes."
    assert sentences(text) == ["Dr. Smith arrived, e.g. at noon.", "It rained!", "Did it stop?",
                               "Yes."]


def test_chinese_punctuation_ends_sentences():
    text = "巴黎是法国的首都。它有两百万居民！真的吗？是的；没错"
    expected = ["巴黎是法国的首都。", "它有两百万居民！", "真的吗？", "是的；", "没错"]
    assert sentences(text) == expected


def test_paragraph_breaks_end_sentences_and_decimals_do_not():
    text = "Revenue was 3.5 million\n\nCosts fell"
    assert sentences(text) == ["Revenue was 3.5 million", "Costs fell"]


def test_chunks_respect_limit_spans_and_sentence_boundaries():
    text = " ".join(f"Sentence number {i} has five words." for i in range(40))
    doc = Document.from_text("a.txt", text)
    chunks = chunk_document(doc, words, max_tokens=30, overlap=0)
    assert len(chunks) > 5
    for c in chunks:
        assert len(c.text.split()) <= 30
        assert doc.text[c.start:c.end] == c.text
        assert c.text.endswith(".") and c.text.startswith("Sentence")
    # without overlap the chunks tile the text in order
    assert all(a.end < b.start for a, b in zip(chunks, chunks[1:], strict=False))


def test_overlap_repeats_trailing_sentences():
    text = " ".join(f"Line {i} has six words here." for i in range(20))
    doc = Document.from_text("a.txt", text)
    chunks = chunk_document(doc, words, max_tokens=24, overlap=12)
    assert chunks[1].start < chunks[0].end  # overlaps
    overlap_text = doc.text[chunks[1].start:chunks[0].end]
    assert len(overlap_text.split()) <= 12
    assert chunks[-1].end == len(doc.text)


def test_overlong_sentence_is_split_by_words():
    text = "word " * 100
    doc = Document.from_text("a.txt", text.strip())
    chunks = chunk_document(doc, words, max_tokens=30, overlap=5)
    assert all(len(c.text.split()) <= 30 for c in chunks)
    assert sum(len(c.text.split()) for c in chunks) >= 100


def test_cjk_without_punctuation_is_split_by_characters():
    doc = Document.from_text("zh.txt", "字" * 50)
    chunks = chunk_document(doc, lambda ts: [len(t) for t in ts], max_tokens=20, overlap=0)
    assert [len(c.text) for c in chunks] == [20, 20, 10]


def test_chunks_stay_within_sections_and_keep_provenance():
    doc = Document.from_sections("r.pdf", [("Page one text. More.", 1, None, None),
                                           ("Page two text.", 2, "Results", None)], title="Report")
    chunks = chunk_document(doc, words, max_tokens=100, overlap=0)
    assert [(c.page, c.heading) for c in chunks] == [(1, None), (2, "Results")]
    assert chunks[1].context == "Report › Results"
    assert doc.text[chunks[1].start:chunks[1].end] == "Page two text."


def test_chunk_ids_are_stable_and_distinct():
    doc = Document.from_text("a.txt", "One. Two. Three.")
    a = chunk_document(doc, words, 2, 0)
    b = chunk_document(doc, words, 2, 0)
    assert [c.id for c in a] == [c.id for c in b]
    assert len({c.id for c in a}) == len(a)


def test_pack_always_progresses():
    pieces = [((i, i + 1), 10) for i in range(5)]
    out = pack(pieces, max_tokens=10, overlap=9)
    assert len(out) == 5


def test_context_line_drops_duplicate_title():
    assert context_line("Guide", "Guide › Install") == "Guide › Install"
    assert context_line("Guide", None) == "Guide"
    assert context_line(None, None) == ""


def test_bad_limits_are_rejected():
    import pytest

    with pytest.raises(ValueError, match="overlap"):
        chunk_document(Document.from_text("a", "x"), words, max_tokens=10, overlap=10)
