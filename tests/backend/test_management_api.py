"""The Management API adapter on its own, against a recorder of what reaches the wire.

The adapter signs (SigV4, computed by itself) and sends over its own sockets; these
tests check what arrives:
the SigV4 signature for ``execute-api`` (verified as API Gateway would), the id
URL-encoded as boto3 encodes it, each outcome and its retries, reused connections, the
bound on posts in flight, and the deadline. No test depends on timing: they wait on
events, and what is slow is slow by a factor of ten or more.
"""

from __future__ import annotations

import datetime
import ipaddress
import re
import socket
import ssl
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

import boto3
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from chat.adapters import management_api
from chat.adapters.management_api import ManagementApi

REGION = "eu-west-1"
CREDENTIALS = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "token-1")
NO_TOKEN = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
# Shaped like API Gateway's ids: base64, so "=", "+" and "/" occur.
ODD_ID = "a+b/c=d+/EXAMPLE="


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    client_port: int

    @property
    def connection_id(self) -> str:
        return unquote(self.path.rsplit("/@connections/", 1)[1])


@dataclass
class Script:
    """How the recorder answers: statuses per connection id (then 200), a gate every
    post waits at, and an extra delay for chosen ids."""

    statuses: dict[str, list[int]] = field(default_factory=dict)
    gate: threading.Event = field(default_factory=threading.Event)
    slow: dict[str, float] = field(default_factory=dict)
    quota: int | None = None  # more posts in flight than this: 429 (a throttled account)
    hold: float = 0.0  # every post answered after this long


class _Handler(BaseHTTPRequestHandler):
    server: Recorder
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def do_POST(self) -> None:
        rec = self.server
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        got = Received(self.path, dict(self.headers.items()), body, self.client_address[1])
        with rec.changed:
            rec.received.append(got)
            rec.in_flight += 1
            rec.most_in_flight = max(rec.most_in_flight, rec.in_flight)
            rec.changed.notify_all()
            statuses = rec.script.statuses.get(got.connection_id) or [200]
            status = statuses.pop(0) if len(statuses) > 1 else statuses[0]
            if rec.script.quota is not None and rec.in_flight > rec.script.quota:
                status = 429
                rec.throttled += 1
        rec.script.gate.wait(30)
        time.sleep(rec.script.slow.get(got.connection_id, rec.script.hold))
        with rec.changed:
            rec.in_flight -= 1
            rec.changed.notify_all()
        self.send_response(status)
        if status >= 400:
            self.send_header("x-amzn-ErrorType", f"Error{status}Exception:http://internal/")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


class Recorder(ThreadingHTTPServer):
    """An ``@connections`` endpoint that records every request and its connection."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.script = Script()
        self.script.gate.set()
        self.received: list[Received] = []
        self.in_flight = 0
        self.most_in_flight = 0
        self.throttled = 0
        self.changed = threading.Condition()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/prod"

    def attempts(self) -> Counter[str]:
        with self.changed:
            return Counter(r.connection_id for r in self.received)

    def wait_until(self, predicate: Any) -> None:
        with self.changed:
            assert self.changed.wait_for(lambda: predicate(self), timeout=30)


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    server = Recorder()
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    yield server
    server.script.gate.set()
    server.shutdown()
    server.server_close()


def adapter(url: str, concurrency: int = 4) -> ManagementApi:
    return ManagementApi(url, region=REGION, credentials=CREDENTIALS, concurrency=concurrency)


# -- what goes on the wire ---------------------------------------------------------------


AUTHORIZATION = re.compile(
    r"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/(?P<date>\d{8})/eu-west-1/execute-api/"
    r"aws4_request, SignedHeaders=(?P<signed>[a-z0-9;-]+), Signature=(?P<signature>[0-9a-f]{64})"
)


@pytest.mark.parametrize("credentials", [CREDENTIALS, NO_TOKEN], ids=["token", "no-token"])
def test_a_post_is_sigv4_signed_for_execute_api_with_the_id_url_encoded(
    recorder, credentials
) -> None:
    api = ManagementApi(recorder.url, region=REGION, credentials=credentials, concurrency=4)
    assert api.post(ODD_ID, b'{"type": "x"}') == "sent"
    [got] = recorder.received
    assert got.path == "/prod/@connections/a%2Bb%2Fc%3Dd%2B%2FEXAMPLE%3D"
    assert got.connection_id == ODD_ID
    assert got.body == b'{"type": "x"}'
    auth = AUTHORIZATION.fullmatch(got.headers["Authorization"])
    assert auth, got.headers["Authorization"]
    assert re.fullmatch(r"\d{8}T\d{6}Z", got.headers["X-Amz-Date"])
    assert got.headers["X-Amz-Date"].startswith(auth["date"])
    assert got.headers.get("X-Amz-Security-Token") == credentials.token
    signed = auth["signed"].split(";")
    assert {"host", "x-amz-date"} | ({"x-amz-security-token"} if credentials.token else set()) \
        == set(signed)

    # Verify it as API Gateway would: the signature of what arrived, under the same key.
    headers = {name: value for name, value in got.headers.items() if name.lower() in signed}
    request = AWSRequest(method="POST", url=f"http://{got.headers['Host']}{got.path}",
                         data=got.body, headers=headers)
    request.context["timestamp"] = got.headers["X-Amz-Date"]
    signer = SigV4Auth(credentials, "execute-api", REGION)
    string_to_sign = signer.string_to_sign(request, signer.canonical_request(request))
    assert signer.signature(string_to_sign, request) == auth["signature"]


def test_the_path_is_the_one_boto3_posts_to(recorder) -> None:
    client = boto3.client(
        "apigatewaymanagementapi", endpoint_url=recorder.url, region_name=REGION,
        aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="secret",
    )
    client.post_to_connection(ConnectionId=ODD_ID, Data=b"boto3")
    adapter(recorder.url).post(ODD_ID, b"adapter")
    boto3_post, adapter_post = recorder.received
    assert adapter_post.path == boto3_post.path
    assert adapter_post.body == b"adapter"


# -- outcomes ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("statuses", "outcome", "attempts"),
    [
        ([200], "sent", 1),
        ([204], "sent", 1),
        ([410], "gone", 1),  # final: the caller removes the connection
        ([500], "unsent", 3),  # refused each time: safe to send again later
        ([503, 200], "sent", 2),
        ([429, 429, 200], "sent", 3),  # throttled, then taken
        ([429], "unsent", 3),
        ([403], "failed", 1),  # other 4xx: not retried
        ([400], "failed", 1),
    ],
)
def test_each_answer_has_its_outcome_and_only_refusals_are_retried(
    recorder, statuses, outcome, attempts
) -> None:
    recorder.script.statuses["c1"] = list(statuses)
    assert adapter(recorder.url).post("c1", b"{}") == outcome
    assert recorder.attempts()["c1"] == attempts


def test_an_answer_after_the_read_timeout_is_failed_and_never_sent_again(
    recorder, monkeypatch
) -> None:
    monkeypatch.setattr(management_api, "READ_TIMEOUT_S", 0.2)  # read at each post
    api = adapter(recorder.url)
    recorder.script.slow["late"] = 3.0  # fifteen times the read timeout
    assert api.post("late", b"{}") == "failed"
    assert recorder.attempts()["late"] == 1


def test_a_connection_never_made_is_retried_then_unsent(monkeypatch) -> None:
    with socket.socket() as s:  # a port nobody listens on: connections are refused
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    api = adapter(f"http://127.0.0.1:{port}/prod")
    tries = []

    class Counted(socket.socket):
        def connect_ex(self, address: Any) -> int:
            tries.append(address)
            return super().connect_ex(address)

    monkeypatch.setattr(management_api.socket, "socket", Counted)
    assert api.post("c1", b"{}") == "unsent"
    assert tries == [("127.0.0.1", port)] * 3


def test_without_credentials_a_post_fails_without_raising(recorder) -> None:
    api = ManagementApi(recorder.url, region=REGION, credentials=None, concurrency=2)
    assert api.post("c1", b"{}") == "failed"
    assert recorder.received == []


# -- many posts --------------------------------------------------------------------------


def test_post_many_delivers_each_recipient_once_and_reports_each_outcome(
    recorder
) -> None:
    ids = [f"c{n}" for n in range(20)]
    recorder.script.statuses.update({"c3": [410], "c5": [500], "c7": [403], "c9": [429, 200]})
    delivery = adapter(recorder.url).post_many([*ids, "c1", "c2"], b"{}")
    assert delivery.gone == ["c3"]
    assert delivery.unsent == ["c5"]
    assert delivery.failed == ["c7"]
    assert sorted(delivery.sent) == sorted(set(ids) - {"c3", "c5", "c7"})
    assert recorder.attempts()["c1"] == 1  # duplicates posted once
    assert recorder.attempts()["c9"] == 2 and recorder.attempts()["c5"] == 3


def test_connections_are_kept_alive_and_reused(recorder) -> None:
    api = adapter(recorder.url, concurrency=3)
    for n in range(5):
        assert api.post(f"one-{n}", b"{}") == "sent"
    assert len({r.client_port for r in recorder.received}) == 1
    delivery = api.post_many([f"many-{n}" for n in range(60)], b"{}")
    assert len(delivery.sent) == 60
    # At most three, the concurrency, kept from call to call: the one the single posts
    # used is among them.
    ports = {r.client_port for r in recorder.received}
    assert len(ports) <= 3
    assert api.post("again", b"{}") == "sent"
    assert recorder.received[-1].client_port in ports


def test_never_more_posts_in_flight_than_the_concurrency(recorder) -> None:
    recorder.script.gate.clear()  # posts wait until four are in flight at once
    api = adapter(recorder.url, concurrency=4)
    waiter = threading.Thread(target=lambda: (
        recorder.wait_until(lambda r: r.in_flight >= 4), recorder.script.gate.set()))
    waiter.start()
    recorder.script.slow.update({f"c{n}": 0.01 for n in range(40)})  # overlap after that
    delivery = api.post_many([f"c{n}" for n in range(40)], b"{}")
    waiter.join()
    assert len(delivery.sent) == 40
    assert recorder.most_in_flight == 4


def test_a_throttled_endpoint_is_sent_fewer_posts_at_once(recorder) -> None:
    # An account that takes 4 posts at a time: beyond that API Gateway answers 429.
    recorder.script.quota, recorder.script.hold = 4, 0.01
    delivery = adapter(recorder.url, concurrency=32).post_many(
        [f"c{n}" for n in range(200)], b"{}")
    # At 32 in flight every round would be mostly 429s, each post spending its three
    # attempts; halving on each round of 429s brings it down to what the account takes.
    assert len(delivery.sent) + len(delivery.unsent) == 200 and not delivery.failed
    assert len(delivery.sent) >= 180, delivery.unsent  # 32 at once: about 150
    assert recorder.throttled < 200, (recorder.throttled, len(delivery.unsent))


def test_at_the_deadline_running_posts_are_failed_and_the_rest_unsent_and_never_sent(
    recorder
) -> None:
    recorder.script.gate.clear()  # nothing is answered before the deadline
    api = adapter(recorder.url, concurrency=2)
    ids = [f"c{n}" for n in range(10)]
    delivery = api.post_many(ids, b"{}", deadline=time.monotonic() + 0.5)
    assert delivery.sent == []
    recorder.script.gate.set()
    arrived = set(recorder.attempts())
    assert len(arrived) <= 2  # the first two posts, if they started in time
    assert sorted(delivery.failed) == sorted(arrived)  # in flight: maybe delivered
    assert sorted(delivery.unsent) == sorted(set(ids) - arrived)  # never sent


def test_a_deadline_already_past_posts_nothing(recorder) -> None:
    delivery = adapter(recorder.url).post_many(["a", "b", "c"], b"{}", deadline=0.0)
    assert sorted(delivery.unsent) == ["a", "b", "c"]
    assert recorder.received == []


# -- HTTPS -------------------------------------------------------------------------------


def self_signed(tmp_path: Any) -> tuple[str, str]:
    """A certificate for 127.0.0.1 and its key, as PEM files."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName(
            [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    return str(cert_file), str(key_file)


def test_https_is_verified_against_the_ca_bundle_boto3_is_given(
    recorder, tmp_path, monkeypatch
) -> None:
    cert, key = self_signed(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    recorder.socket = context.wrap_socket(recorder.socket, server_side=True)
    url = recorder.url.replace("http://", "https://")
    # Not in the system's trust store: refused before anything is sent, and not retried.
    monkeypatch.delenv("AWS_CA_BUNDLE", raising=False)
    assert adapter(url).post("c1", b"{}") == "failed"
    assert recorder.received == []
    # Trusted through boto3's own setting (AWS_CA_BUNDLE): posted over TLS on a
    # kept-alive connection.
    monkeypatch.setenv("AWS_CA_BUNDLE", cert)
    api = adapter(url)
    assert [api.post(f"c{n}", b"{}") for n in range(3)] == ["sent"] * 3
    assert len({r.client_port for r in recorder.received}) == 1
    assert recorder.received[0].headers["Host"] == url.split("/")[2]


def test_without_a_system_trust_store_certifis_bundle_is_trusted(monkeypatch) -> None:
    import certifi

    monkeypatch.delenv("AWS_CA_BUNDLE", raising=False)
    # A system whose OpenSSL finds no CA file or folder (as ssl reports it: None).
    monkeypatch.setattr(management_api.ssl, "get_default_verify_paths",
                        lambda: ssl.DefaultVerifyPaths(None, None, "", "", "", ""))
    context = adapter("https://abc123.execute-api.eu-west-1.amazonaws.com/prod").context
    assert context is not None and context.verify_mode == ssl.CERT_REQUIRED
    trusted = {c["serialNumber"] for c in context.get_ca_certs()}
    reference = ssl.create_default_context(cafile=certifi.where())
    assert trusted and trusted == {c["serialNumber"] for c in reference.get_ca_certs()}


def test_an_https_endpoint_is_reached_over_verified_tls_on_443() -> None:
    api = adapter("https://abc123.execute-api.eu-west-1.amazonaws.com/prod")
    assert (api.host, api.port) == ("abc123.execute-api.eu-west-1.amazonaws.com", 443)
    assert api.host_header == "abc123.execute-api.eu-west-1.amazonaws.com"
    assert api.context is not None and api.context.verify_mode == ssl.CERT_REQUIRED
    assert api.context.check_hostname
    with pytest.raises(ValueError, match="not an http"):
        adapter("ftp://example.com/prod")


# -- answers as they come on the wire --------------------------------------------------------


class RawEndpoint:
    """Answers each request with the next of ``answers`` (raw bytes), closing the
    connection after an answer that says so; records which connection each came on."""

    def __init__(self, answers: list[bytes]) -> None:
        self.answers = list(answers)
        self.requests: list[int] = []  # the client port of each request, in order
        self.closed_idle = threading.Event()  # an answer followed by b"CLOSE" was closed
        self.server = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.server.getsockname()[1]}/prod"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while self.answers:
            try:
                conn, (_, port) = self.server.accept()
            except OSError:
                return
            with conn:
                buffer = b""
                while self.answers:
                    while b"\r\n\r\n" not in buffer:
                        chunk = conn.recv(65536)
                        if not chunk:
                            break
                        buffer += chunk
                    if b"\r\n\r\n" not in buffer:
                        break
                    head, _, rest = buffer.partition(b"\r\n\r\n")
                    length = int(re.search(rb"Content-Length: (\d+)", head)[1])
                    while len(rest) < length:
                        rest += conn.recv(65536)
                    buffer = rest[length:]
                    self.requests.append(port)
                    answer = self.answers.pop(0)
                    conn.sendall(answer)
                    if self.answers and self.answers[0] == b"CLOSE":  # as when idle too long
                        self.answers.pop(0)
                        conn.shutdown(socket.SHUT_RDWR)
                        self.closed_idle.set()
                        break
                    if b"Connection: close" in answer or not answer.startswith(b"HTTP/1.1"):
                        break

    def close(self) -> None:
        self.server.close()


def test_answers_are_read_whatever_their_framing() -> None:
    endpoint = RawEndpoint([
        # Throttled, with a chunked body, then taken: retried on the same connection.
        b"HTTP/1.1 429 Too Many Requests\r\nx-amzn-ErrorType: LimitExceededException\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n13\r\n{\"message\": \"slow\"}\r\n0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
        # Taken, the body ending with the connection: a new connection for the next.
        b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n",
        b"HTTP/1.1 410 Gone\r\nx-amzn-ErrorType: GoneException\r\nContent-Length: 0\r\n\r\n",
        # Not HTTP: failed, never sent again (it may have been delivered).
        b"garbage\r\n\r\n",
    ])
    try:
        api = adapter(endpoint.url, concurrency=1)
        assert api.post("a", b"{}") == "sent"
        assert api.post("b", b"{}") == "sent"
        assert api.post("c", b"{}") == "gone"
        assert api.post("d", b"{}") == "failed"
        first, retried, closing, gone, garbage = endpoint.requests
        # The 429 kept the connection; the answer that closed it was its last.
        assert first == retried == closing != gone == garbage
    finally:
        endpoint.close()


def test_a_connection_the_server_closed_while_idle_is_not_used_again() -> None:
    ok = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
    endpoint = RawEndpoint([ok, b"CLOSE", ok])
    try:
        api = adapter(endpoint.url, concurrency=1)
        assert api.post("a", b"{}") == "sent"
        assert endpoint.closed_idle.wait(10)  # e.g. while a Lambda was frozen
        assert api.post("b", b"{}") == "sent"  # not "failed" on the dead connection
        first, second = endpoint.requests
        assert first != second
    finally:
        endpoint.close()


# -- failures that speak: metrics and logs -----------------------------------------------------


PAYLOAD = b'{"type": "message", "text": "words nobody else may read"}'


@pytest.fixture
def counted() -> Iterator[Any]:
    """What the adapter counted on Powertools' ``metrics``: ``{name: total}``."""
    from chat.observability import metrics

    metrics.clear_metrics()

    def totals() -> dict[str, float]:
        emf = metrics.serialize_metric_set()
        names = [m["Name"] for m in emf["_aws"]["CloudWatchMetrics"][0]["Metrics"]]
        return {name: sum(emf[name]) if isinstance(emf[name], list) else emf[name]
                for name in names}

    yield totals
    metrics.clear_metrics()


def emf_lines(out: str) -> list[dict[str, Any]]:
    """The CloudWatch EMF objects Powertools printed."""
    import json

    return [obj for obj in (json.loads(line) for line in out.splitlines()
                            if line.startswith("{")) if "_aws" in obj]


def by_reason(out: str, name: str = "PostsFailed") -> dict[str, float]:
    found: dict[str, float] = {}
    for emf in emf_lines(out):
        (directive,) = emf["_aws"]["CloudWatchMetrics"]
        if [m["Name"] for m in directive["Metrics"]] == [name]:
            assert directive["Namespace"] == "ServerlessChat"
            assert sorted(directive["Dimensions"][0]) == ["reason", "service"]
            value = emf[name]
            found[emf["reason"]] = found.get(emf["reason"], 0) + (
                sum(value) if isinstance(value, list) else value)
    return found


def test_each_ending_is_counted_and_failures_are_logged_at_error_with_their_reason(
    recorder, counted, json_logs, capsys
) -> None:
    recorder.script.statuses.update({
        "gone": [410], "busy": [429], "no": [403], "bad": [400], "down": [500]})
    delivery = adapter(recorder.url).post_many(
        ["ok-1", "ok-2", "gone", "busy", "no", "bad", "down"], PAYLOAD)
    assert sorted(delivery.failed) == ["bad", "no"]
    assert sorted(delivery.unsent) == ["busy", "down"]
    assert counted() == {"PostsSent": 2, "PostsGone": 1, "PostsThrottled": 1,
                         "PostsFailed": 3}
    out = capsys.readouterr().out
    assert by_reason(out) == {"forbidden": 1, "rejected": 1, "server_error": 1}
    errors = {line["reason"]: line for line in json_logs() if line["level"] == "ERROR"}
    assert set(errors) == {"forbidden", "rejected", "server_error"}  # not gone, throttled
    assert errors["forbidden"]["targets"] == ["no"]
    assert errors["forbidden"]["status"] == 403
    assert errors["server_error"]["attempts"] == 3
    assert all(line["message"] == "posts failed" for line in errors.values())
    assert b"nobody else" not in (out + repr(errors)).encode()
    assert CREDENTIALS.token not in out + repr(errors)


def test_a_timed_out_post_is_counted_as_timed_out_not_logged_as_an_error(
    recorder, counted, json_logs, monkeypatch
) -> None:
    monkeypatch.setattr(management_api, "READ_TIMEOUT_S", 0.2)
    recorder.script.slow["late"] = 3.0
    assert adapter(recorder.url).post("late", PAYLOAD) == "failed"
    assert counted() == {"PostsTimedOut": 1}
    assert not [line for line in json_logs() if line["level"] == "ERROR"]


def test_posts_cut_off_by_the_deadline_count_as_timed_out(recorder, counted) -> None:
    recorder.script.gate.clear()
    delivery = adapter(recorder.url, concurrency=2).post_many(
        [f"c{n}" for n in range(5)], PAYLOAD, deadline=time.monotonic() + 0.3)
    recorder.script.gate.set()
    assert len(delivery.failed) + len(delivery.unsent) == 5
    assert counted() == {"PostsTimedOut": 5}


class _BrokenRefresh(Exception):
    pass


def expired_credentials() -> Any:
    """botocore's refreshable credentials, expired, whose refresh fails (the credential
    endpoint down): signing cannot get a key."""
    from botocore.credentials import RefreshableCredentials

    def refresh() -> dict[str, str]:
        raise _BrokenRefresh("credential endpoint unreachable")

    return RefreshableCredentials.create_from_metadata(
        {"access_key": "AKIDEXAMPLE", "secret_key": "old-secret", "token": "old-token",
         "expiry_time": "2020-01-01T00:00:00Z"},
        refresh_using=refresh, method="test")


@pytest.mark.parametrize("credentials", [None, "expired"], ids=["none", "expired"])
def test_when_signing_fails_every_post_is_failed_logged_and_counted(
    recorder, counted, json_logs, capsys, credentials
) -> None:
    creds = expired_credentials() if credentials == "expired" else None
    api = ManagementApi(recorder.url, region=REGION, credentials=creds, concurrency=2)
    delivery = api.post_many(["a", "b", "c"], PAYLOAD)
    assert sorted(delivery.failed) == ["a", "b", "c"]
    assert recorder.received == []
    assert counted() == {"PostsFailed": 3}
    assert by_reason(capsys.readouterr().out) == {"signing": 3}
    [error] = [line for line in json_logs() if line["level"] == "ERROR"]
    assert error["reason"] == "signing" and error["count"] == 3
    assert error["targets"] == ["a", "b", "c"]
    assert error["error_type"] == ("NoCredentialsError" if creds is None else "_BrokenRefresh")
    assert "old-secret" not in repr(error) and "old-token" not in repr(error)
