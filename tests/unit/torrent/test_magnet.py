"""Magnet links: the one builder, in the registry's form (URLSearchParams encoding, a space is
``+``), for the `weightless` command's output and the web pages alike."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from weightless.torrent.magnet import form_encode, magnet_uri


def test_magnet_uri_hybrid_matches_spec_format() -> None:
    v1, v2 = "04a86f7b2d7463ab" + "0" * 24, "bf1a33cbc65f8e9d" + "0" * 48
    uri = magnet_uri("archive.zip", v2, v1, ["http://localhost:8080/announce"])
    assert uri == (
        f"magnet:?xt=urn:btih:{v1}&xt=urn:btmh:1220{v2}&dn=archive.zip"
        "&tr=http%3A%2F%2Flocalhost%3A8080%2Fannounce"
    )


def test_magnet_uri_variants() -> None:
    v1, v2 = "A" * 40, "B" * 64
    assert magnet_uri("x", v2, None, []) == f"magnet:?xt=urn:btmh:1220{'b' * 64}&dn=x"
    assert magnet_uri("x", None, v1, ["udp://t:1", "http://u/a"]) == (
        f"magnet:?xt=urn:btih:{'a' * 40}&dn=x&tr=udp%3A%2F%2Ft%3A1&tr=http%3A%2F%2Fu%2Fa"
    )
    # URLSearchParams: space is '+', only *-._ and alphanumerics stay as they are.
    assert magnet_uri("a b~c*d-e.f_g+h&é", v2, None, []).endswith(
        "&dn=a+b%7Ec*d-e.f_g%2Bh%26%C3%A9"
    )
    assert magnet_uri("\ud800", v2, None, []).endswith("&dn=%EF%BF%BD")
    for bad in [("x", None, None), ("x", "b" * 63, None), ("x", None, "g" * 40)]:
        with pytest.raises(ValueError):
            magnet_uri(*bad, [])


def test_values_decode_back_to_what_was_given() -> None:
    name = "Llama weights & co/v4 = 100% ~ü"
    trackers = ["http://t.example:8080/announce", "udp://t.example:8080/announce"]
    query = parse_qs(urlsplit(magnet_uri(name, "c" * 64, "d" * 40, trackers)).query)
    assert query["xt"] == [f"urn:btih:{'d' * 40}", f"urn:btmh:1220{'c' * 64}"]
    assert query["dn"] == [name]
    assert query["tr"] == trackers


@pytest.mark.parametrize(
    ("text", "encoded"),
    [
        ("my model", "my+model"),
        ("a/b:c?d#e", "a%2Fb%3Ac%3Fd%23e"),
        ("AZaz09*-._", "AZaz09*-._"),
        ("~", "%7E"),
        ("", ""),
    ],
)
def test_form_encode_is_url_search_params(text: str, encoded: str) -> None:
    assert form_encode(text) == encoded
