import subprocess
import sys

import ragtune

EXPECTED = {
    "Answer", "ChunkSettings", "Chunk", "Citation", "Completion", "ConfigError", "Document",
    "DocumentError", "Embedder", "EmbedderMismatchError", "EmbedderSettings", "GenerationError",
    "Generator", "GeneratorSettings", "Hit", "IngestReport", "KnowledgeBase",
    "KnowledgeBaseError", "Message", "ModelNotInstalledError", "RagtuneError",
    "RetrievalSettings", "Section", "Settings", "UnknownComponentError", "__version__",
    "build_embedder", "build_generator", "load_settings",
}


def test_public_surface_does_not_drift():
    assert set(ragtune.__all__) == EXPECTED
    assert all(hasattr(ragtune, name) for name in ragtune.__all__)


def test_import_is_light_and_offline():
    code = ("import sys, ragtune; heavy = [m for m in ('torch', 'transformers', 'lancedb', "
            "'sentence_transformers', 'jieba') if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
