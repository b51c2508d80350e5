"""VietQR payloads against DOMAIN.md and two independent third-party decoders; PNGs read by zxing-cpp."""

from __future__ import annotations

import io

import pytest
import zxingcpp
from PIL import Image
from qr_pay.decode import decode as napas_decode
from vietnam_qr_pay import QRPay

from app.merchants import vietqr

EXAMPLE = "00020101021138540010A00000072701240006970423011000999999990208QRIBFTTA53037045802VN6304CBB4"


def test_crc_check_value_and_the_public_example() -> None:
    assert f"{vietqr.crc16_ccitt_false(b'123456789'):04X}" == "29B1"
    parsed = vietqr.parse(EXAMPLE)
    assert (parsed.bank_bin, parsed.account, parsed.dynamic, parsed.amount) == (
        "970423",
        "0099999999",
        False,
        None,
    )
    # rebuilding the same fields gives the example byte for byte (names and city are optional there)
    assert vietqr.build(vietqr.VietQr(bank_bin="970423", account="0099999999")) == EXAMPLE


def test_our_payloads_read_back_field_by_field_by_two_third_party_decoders() -> None:
    static = vietqr.build(
        vietqr.VietQr(
            bank_bin="970423",
            account="961234567890",
            mcc="5812",
            name="Quán Bún Bò O Xuân",
            city="Huế",
            store="QUAY-1",
        )
    )
    dynamic = vietqr.build(
        vietqr.VietQr(
            bank_bin="970423",
            account="961234567890",
            dynamic=True,
            amount=45_000,
            mcc="5812",
            name="Quán Bún Bò O Xuân",
            city="Huế",
            reference="HS0011223344556677",
            purpose="Bun bo dac biet",
        )
    )
    for payload, method, amount in ((static, "11", None), (dynamic, "12", "45000")):
        q = QRPay(payload)  # vietnam-qr-pay
        assert q.is_valid
        assert (q.version, q.init_method, q.currency, q.nation) == ("01", method, "704", "VN")
        assert (q.provider.guid, q.provider.service) == ("A000000727", "QRIBFTTA")
        assert (q.consumer.bank_bin, q.consumer.bank_number) == ("970423", "961234567890")
        assert q.amount == amount
        assert q.category == "5812"
        assert (q.merchant.name, q.city) == ("Quan Bun Bo O Xuan", "Hue")
        d = napas_decode(payload)  # napas-qr-python (verifies the CRC itself)
        assert (d["bin_id"], d["consumer_id"], d["service_code"]) == ("970423", "961234567890", "QRIBFTTA")
        assert d["point_of_initiation_method"] == method
        assert d["transaction_amount"] == amount
        assert (d["merchant_name"], d["merchant_city"]) == ("Quan Bun Bo O Xuan", "Hue")
    assert QRPay(static).additional_data.store == "QUAY-1"
    assert QRPay(dynamic).additional_data.reference == "HS0011223344556677"
    assert QRPay(dynamic).additional_data.purpose == "Bun bo dac biet"


@pytest.mark.parametrize(
    "payload", [EXAMPLE, vietqr.build(vietqr.VietQr("970423", "961234567890", True, 120_000))]
)
def test_png_decodes_to_the_payload(payload: str) -> None:
    found = zxingcpp.read_barcodes(Image.open(io.BytesIO(vietqr.png(payload))))
    assert [r.text for r in found] == [payload]
    assert vietqr.svg(payload).startswith(b"<?xml")


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (EXAMPLE[:-4] + "CBB5", "bad_crc"),
        (EXAMPLE.replace("0208QRIBFTTA", "0209QRIBFTTA"), "bad_crc"),  # any edit breaks the CRC first
        ("hello", "bad_crc"),
    ],
)
def test_strict_parse_refuses(payload: str, reason: str) -> None:
    with pytest.raises(vietqr.QrInvalidError) as caught:
        vietqr.parse(payload)
    assert caught.value.reason == reason


def test_wrong_length_with_a_valid_crc_is_refused() -> None:
    body = "000201010211385400" + "6304"  # field 38 declares 54 characters that are not there
    payload = body + f"{vietqr.crc16_ccitt_false(body.encode()):04X}"
    with pytest.raises(vietqr.QrInvalidError) as caught:
        vietqr.parse(payload)
    assert caught.value.reason in ("bad_length", "bad_tlv")


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        ("Quán Bún Bò Ơ Xuân", 25, "Quan Bun Bo O Xuan"),
        ("Đồng Khánh", None, "Dong Khanh"),
        ("Thành phố Huế, Việt Nam", 15, "Thanh pho Hue,"),
        ("Nhà Hàng Cơm Niêu Đồng Khánh Thừa Thiên", 25, "Nha Hang Com Nieu Dong Kh"),
    ],
)
def test_names_become_ascii_cut_without_a_dangling_space(text: str, limit: int | None, expected: str) -> None:
    assert vietqr.ascii_text(text, limit) == expected
