import json
import subprocess
import sys

from ragtune.models.gguf_cache import bundled_gguf, converted_model
from ragtune.models.registry import bundled_model
from ragtune.testing.contracts import check_embedder, check_generator


def test_bundled_embedder_passes_the_contract(embedder):
    check_embedder(embedder)
    assert embedder.dimension == 384


def test_int8_embeddings_stay_close_to_fp32_and_rank_alike(embedder):
    import numpy as np
    import pytest

    from ragtune.models.embedders import SentenceTransformerEmbedder, int8_supported

    if not int8_supported():
        pytest.skip("this CPU has no int8 kernels; the default embedder runs in fp32")
    assert embedder.precision == "int8"  # the default on such a CPU
    exact = SentenceTransformerEmbedder("all-minilm-l6-v2", precision="fp32")
    check_embedder(exact)
    docs = ["The Eiffel Tower was completed in 1889 and is 330 metres tall.",
            "Every employee receives 25 days of paid vacation per year.",
            "The Louvre is the most visited museum in the world.",
            "Photosynthesis turns light, water and carbon dioxide into sugar."]
    queries = ["How tall is the Eiffel Tower?", "How many vacation days do I get?",
               "Which museum has the most visitors?", "How do plants make sugar?"]
    fast, slow = embedder.embed(docs), exact.embed(docs)
    assert float((fast * slow).sum(1).min()) > 0.95
    for q_fast, q_slow in zip(embedder.embed(queries), exact.embed(queries), strict=True):
        assert np.argmax(fast @ q_fast) == np.argmax(slow @ q_slow)
    if embedder.int8_kernel == "native":  # activations scaled per token: no batch effects
        alone = np.concatenate([embedder.embed([d]) for d in docs])
        np.testing.assert_allclose(alone, fast, atol=1e-5)


def test_presorted_passes_match_sentence_transformers_encode(embedder, monkeypatch):
    import numpy as np

    from ragtune.models import embedders

    assert embedder._presorted  # the bundled MiniLM takes ragtune's own batching
    monkeypatch.setattr(embedders, "TOKENIZE_GROUP", 7)  # several groups, a short last one
    words = "retrieval augmented generation answers from the documents it finds".split()
    texts = [" ".join(words[: 1 + i % len(words)] * (1 + i // 3)) for i in range(23)]
    texts += ["", "x", texts[4]]  # an empty text, a one-character one, a repeat
    ours = embedder.embed(texts)
    reference = embedder._model.encode(texts, batch_size=embedder.batch_size,
                                       normalize_embeddings=True)
    assert ours.shape == (len(texts), embedder.dimension) and ours.dtype == np.float32
    np.testing.assert_allclose(ours, reference, atol=1e-5)
    np.testing.assert_array_equal(ours[4], ours[-1])


def test_bundled_generator_passes_the_contract(generator):
    check_generator(generator)
    assert generator.context_window == 2048
    out = generator.generate([{"role": "user", "content": "What is the capital of France?"}],
                             max_tokens=20)
    assert "Paris" in out.text


def test_gguf_is_converted_once_and_reloads_fast(generator):
    # the session fixture converted it already; a new process loads the cached safetensors
    folder = converted_model(bundled_gguf(bundled_model("smollm2-135m-instruct")))
    assert (folder / "model.safetensors").exists()
    # the load is timed after the Python imports of torch and transformers (about 3 s of
    # interpreter work that any use of them pays, whatever the model)
    code = "\n".join([
        "import time, json",
        "t0 = time.perf_counter()",
        "import torch, transformers.modeling_utils",
        "from ragtune.models.local_generator import LocalGenerator",
        "t1 = time.perf_counter()",
        "g = LocalGenerator('smollm2-135m-instruct')",
        "t2 = time.perf_counter()",
        "print(json.dumps({'imports': t1 - t0, 'load': t2 - t1, 'path': str(g.path)}))",
    ])
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["path"] == str(folder)
    assert result["load"] < 5.0, f"second load took {result['load']:.1f} s"


def test_no_hub_access_configured(generator):
    import os

    assert os.environ.get("HF_HUB_OFFLINE") == "1"
