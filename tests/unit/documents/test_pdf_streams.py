"""A PDF's streams are counted as they inflate before PDFium reads it, encrypted or not."""

import pytest

from ragtune.documents.loaders import MAX_EXPANDED_BYTES, load_pdf
from ragtune.documents.pdf_streams import pdf_expanded_bytes
from ragtune.errors import DocumentError
from ragtune.testing.hostile import pdf_bytes

BOMB = 80 * 1024 * 1024  # over the 64 MB a PDF's streams may inflate to


@pytest.mark.parametrize("encrypted", [False, True])
def test_a_bomb_is_refused_encrypted_or_not(tmp_path, encrypted):
    path = tmp_path / "bomb.pdf"
    path.write_bytes(pdf_bytes("Inflated.", padding=BOMB, encrypted=encrypted))
    assert path.stat().st_size < 200_000
    with pytest.raises(DocumentError, match="inflate to over 67 MB"):
        load_pdf(path, str(path))


@pytest.mark.parametrize("encrypted", [False, True])
def test_a_small_pdf_is_read_encrypted_or_not(tmp_path, encrypted):
    path = tmp_path / "lock.pdf"
    data = pdf_bytes("The lock keeper opens the gates at dawn.", encrypted=encrypted)
    path.write_bytes(data)
    assert (b"/Encrypt" in data) == encrypted
    assert pdf_expanded_bytes(data, MAX_EXPANDED_BYTES) == len(
        "BT /F1 12 Tf 72 720 Td (The lock keeper opens the gates at dawn.) Tj ET")
    assert load_pdf(path, str(path))[0].text == "The lock keeper opens the gates at dawn."


@pytest.mark.parametrize("method", ["RC4", "AES_128", "AES_256"])
def test_streams_of_every_standard_encryption_are_counted(tmp_path, method):
    from fpdf import FPDF
    from fpdf.enums import EncryptionMethod

    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("helvetica", size=12)
    for i in range(40):
        pdf.cell(text=f"Line {i} of the ledger kept at the lock.", new_x="LMARGIN", new_y="NEXT")
    pdf.set_encryption(owner_password="owner", encryption_method=EncryptionMethod[method])
    path = tmp_path / "ledger.pdf"
    pdf.output(str(path))
    data = path.read_bytes()
    expanded = pdf_expanded_bytes(data, MAX_EXPANDED_BYTES)
    assert expanded > 40 * len("Line 0 of the ledger kept at the lock.")  # decrypted, inflated
    assert "Line 39 of the ledger" in load_pdf(path, str(path))[0].text


def test_an_encrypted_stream_whose_length_cannot_be_found_is_refused(tmp_path):
    data = pdf_bytes("Hidden.", encrypted=True)
    start = data.index(b"<< /Length")
    end = data.index(b">>", start) + 2
    # the length is object 9, which the file does not hold (offsets kept: same size)
    data = data[:start] + b"<</Length 9 0 R/Filter/FlateDecode>>".ljust(end - start) + data[end:]
    with pytest.raises(DocumentError, match="length is kept where it cannot be read"):
        pdf_expanded_bytes(data, MAX_EXPANDED_BYTES, "odd.pdf")
