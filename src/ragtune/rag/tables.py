"""How a table chunk is shown to the model: its header row, a rule, then its rows.

A table chunk (``kind == "table"``, see :mod:`ragtune.documents.tables`) holds whole rows
of a Markdown table; its header row is the last line of its ``context``. Shown as it is
stored the rows would stand without their columns, so the source block puts them back
under the header as one Markdown table.
"""

from __future__ import annotations

from ragtune.documents.tables import split_context
from ragtune.types import Chunk

__all__ = ["format_table_source"]


def format_table_source(label: str, chunk: Chunk, context: bool = True) -> str:
    """``[n] name, page p (title › statement)`` then the table: header, rule, rows.

    ``label`` is the block's first line as far as the source's name (``[1] q3.pdf, page 4``);
    ``context`` adds the document and statement titles to it (the header row is always
    shown, since the rows cannot be read without it).

    Example:
        >>> c = Chunk("x", "q3.pdf", "| Total | 5 |", 0, 13, page=4, kind="table",
        ...           context="Q3 › Sales\\n|  | 2022 |")
        >>> print(format_table_source("[1] q3.pdf, page 4", c))
        [1] q3.pdf, page 4 (Q3 › Sales)
        |  | 2022 |
        |---|---|
        | Total | 5 |
    """
    line, header = split_context(chunk.context)
    head = f"{label} ({line})" if context and line else label
    if not header:
        return f"{head}\n{chunk.text}"
    rule = "|" + "---|" * (header.count("|") - 1)
    return f"{head}\n{header}\n{rule}\n{chunk.text}"
