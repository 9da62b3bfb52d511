"""Fine-tuning: prepare data, train LoRA adapters, export.

Importing this package loads nothing heavy; the tokenizer and the trainer import
transformers and torch when they are used.
"""

from ragtune.tune.data import (
    ChatTokenizer,
    Example,
    InputFile,
    ReadReport,
    TokenCounter,
    load_prepared,
    load_tokenizer,
    prepare,
    read_records,
    split_examples,
    token_stats,
)

__all__ = [
    "ChatTokenizer",
    "Example",
    "InputFile",
    "ReadReport",
    "TokenCounter",
    "load_prepared",
    "load_tokenizer",
    "prepare",
    "read_records",
    "split_examples",
    "token_stats",
]
