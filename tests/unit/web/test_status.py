from twisted.web.test.requesthelper import DummyRequest

from weightless.web.status import set_status


def test_429_goes_out_with_its_reason_phrase() -> None:
    request = DummyRequest([b""])
    set_status(request, 429)
    assert (request.responseCode, request.responseMessage) == (429, b"Too Many Requests")
