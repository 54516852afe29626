"""The README's quickstart, end to end: ``./scripts/demo`` in a fresh clone.

What a newcomer does: clone the repository, run ``./scripts/demo``, sign in with
HyperID (allauth's OpenID Connect login against the simulator), transfer
money, approve the push on the simulator's phone page, and see the transfer exactly
once; the same through the API; Ctrl-C stops everything. This test does the same in
a ``git clone`` of the committed HEAD into a temporary directory, on free ports, with
headless Chromium (Debian's /usr/bin/chromium, driven by Playwright).

Two more start and stop the demo without a browser, and leave nothing running:
Ctrl-C when the demo was started with SIGINT ignored (as a background job of a
script starts), and SIGTERM to the script alone (as a process manager stops it).

In the suite, one difference from a newcomer's first run: the demo reuses the
virtualenv that runs these tests (``HYPERID_MFA_VENV``, read by scripts/_common.sh)
instead of creating its own and installing everything into it, which takes a minute
and needs the package index. Everything else (the script, migrations, demo users, the
simulator in the background, the dev server, the app's code) comes from the clone. (A
module that the clone lacks but the working tree of that virtualenv's editable install
has is still found there, by the editable finder; in CI both are the same commit.)

``HYPERID_MFA_DEMO_OWN_VENV=1`` removes that difference: each clone's demo builds its
own virtualenv, exactly as the README's first command does, holding only what the
script installs (a package the demo needs and its install lacks fails here, as it
would for a newcomer). CI runs this file so (``.ci/run demo``), and the README test
then prints the wall time to the first page and to the transfer.

``HYPERID_MFA_SCREENSHOTS=DIR`` saves the pictures the README shows
(``approval-page.png``, ``approval-page-dark.png``, ``authenticator-page.png``...) into DIR, e.g.
``HYPERID_MFA_SCREENSHOTS=docs/images ./scripts/test tests/test_demo.py``.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import pytest
import requests

from tests.accessibility import assert_page, axe_if_installed
from tests.chromium import ARTIFACTS, launch, open_phone

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
USERNAME, PASSWORD = "alice", "alice-demo"  # what prepare_demo prints
ADMIN_USERNAME, ADMIN_PASSWORD = "admin", "admin-demo"
#: Whether each demo builds its own virtualenv, as a newcomer's does (see above).
OWN_VENV = os.environ.get("HYPERID_MFA_DEMO_OWN_VENV") == "1"
#: Creating the demo's virtualenv and installing into it comes first in that case.
STARTUP_SECONDS = 600 if OWN_VENV else 90
TIMEOUT_MS = 20_000


def free_ports(count: int) -> list[int]:
    """Ports nothing listens on; held open together so that they differ."""
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]


def listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
    except OSError:
        return False
    return True


class Demo:
    """``./scripts/demo`` running in its own process group, as in a terminal.

    Leaving the ``with`` block kills whatever is left of the group (the script, the
    dev server and its autoreloader child, the simulator), whatever happened.
    """

    def __init__(
        self,
        clone: Path,
        web_port: int,
        simulator_port: int,
        log: Path,
        *,
        sigint_ignored: bool = False,
    ) -> None:
        self.clone = clone
        self.sigint_ignored = sigint_ignored
        self.web = f"http://127.0.0.1:{web_port}"
        self.simulator = f"http://127.0.0.1:{simulator_port}"
        self.web_port, self.simulator_port = web_port, simulator_port
        self.log_path = log
        self.env = {
            key: value
            for key, value in os.environ.items()
            if key
            not in {
                "DJANGO_SETTINGS_MODULE",
                "HYPERID_MFA_PYTHON",
                "HYPERID_MFA_DJANGO",
                "HYPERID_MFA_VENV",
                "VIRTUAL_ENV",
            }
        }
        if not OWN_VENV:
            self.env["HYPERID_MFA_VENV"] = sys.prefix
        self.env["HYPERID_MFA_DEMO_SIMULATOR_PORT"] = str(simulator_port)
        self.process: subprocess.Popen[bytes] | None = None

    def run(self, *args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        """Run ./scripts/demo to completion (a second one, say) with this demo's settings."""
        env = {**self.env, **kwargs.pop("env", {})}
        return subprocess.run(
            ["./scripts/demo", *args],
            cwd=self.clone,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def __enter__(self) -> Demo:
        self.started = time.monotonic()
        command = ["./scripts/demo", f"127.0.0.1:{self.web_port}"]
        if self.sigint_ignored:
            # As a background job of a non-interactive shell starts: SIGINT ignored,
            # which the script inherits and cannot undo (exec keeps the pid).
            command = ["bash", "-c", 'trap "" INT; exec "$@"', "bash", *command]
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                command,
                cwd=self.clone,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        process = self.process
        if process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
        if exc is not None:
            print(f"--- ./scripts/demo output ---\n{self.log()}")  # shown with the failure

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_until_up(self) -> float:
        """Wait for the site's first page; the seconds since the script started."""
        assert self.process is not None
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"./scripts/demo exited:\n{self.log()}"
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"{self.web}/accounts/login/", timeout=2).status_code == 200:
                    self.assert_in_its_own_venv()
                    return time.monotonic() - self.started
            time.sleep(0.25)
        pytest.fail(f"the demo did not answer within {STARTUP_SECONDS}s:\n{self.log()}")

    def assert_in_its_own_venv(self) -> None:
        """With ``OWN_VENV``, the script made .venvs/demo in the clone and runs in it."""
        if not OWN_VENV:
            return
        venv = self.clone / ".venvs" / "demo"
        assert (venv / "bin" / "python").exists(), self.log()
        running = subprocess.run(
            ["ps", "-ww", "-o", "args=", "-g", str(self.process.pid if self.process else 0)],
            capture_output=True,
            text=True,
            check=False,
        ).stdout
        assert f"{venv}/bin/python" in running, running

    def interrupt(self) -> int:
        """Ctrl-C in the demo's terminal: SIGINT to its whole process group."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGINT)
        return self.wait_for_exit(30, "Ctrl-C")

    def terminate(self, seconds: float) -> int:
        """SIGTERM to the script alone, as a process manager stops it."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.wait_for_exit(seconds, "SIGTERM")

    def wait_for_exit(self, seconds: float, what: str) -> int:
        assert self.process is not None
        try:
            return self.process.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            pytest.fail(
                f"{what} did not stop the demo within {seconds} s; still running:\n" + self.group()
            )

    def running_in_group(self) -> bool:
        assert self.process is not None
        states = subprocess.run(
            ["ps", "-o", "stat=", "-g", str(self.process.pid)],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.split()
        return any(not state.startswith("Z") for state in states)

    def group(self) -> str:
        """What runs in the demo's process group, as ps lists it."""
        assert self.process is not None
        return subprocess.run(
            ["ps", "-o", "pid,stat,wchan:24,args", "-g", str(self.process.pid)],
            capture_output=True,
            text=True,
            check=False,
        ).stdout

    def assert_stopped_entirely(self) -> None:
        """Nothing of the demo is left: no process in its group, no port open.

        A process that has exited but is not yet reaped (a zombie) counts as gone: on
        Ctrl-C, runserver's autoreloader leaves its server process, exiting on the
        same Ctrl-C, to init after a quarter of a second (Python's Popen does).
        """
        assert self.process is not None
        deadline = time.monotonic() + 5
        while self.running_in_group():
            if time.monotonic() > deadline:
                pytest.fail(f"processes of the demo are left:\n{self.group()}")
            time.sleep(0.1)
        assert not listening(self.web_port)
        assert not listening(self.simulator_port)
        log = self.log()
        assert "HyperID simulator stopped" in log
        assert "Traceback" not in log


#: What the bank's home page offers a signed-in user, in order.
HOME_ACTIONS = [
    "the simulator's authenticator page",
    "Sign in with HyperID again",
    "Transfer money",
    "your phone",
    "Transfers",
    "/api/transfers/",
    "Swagger UI",
    "/mfa/",
]


def screenshot(page: Any, name: str) -> None:
    """Save what ``page`` (a page, or a locator: that element alone) shows."""
    target = os.environ.get("HYPERID_MFA_SCREENSHOTS")
    if target:
        folder = Path(target) if Path(target).is_absolute() else REPO / target
        folder.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(folder / name))


def send_transfer(demo: Demo, site: Any, amount: str, payee: str = "Bob") -> None:
    """Fill in the bank's transfer form and send it."""
    site.goto(f"{demo.web}/transfer/")
    site.fill("#id_amount", amount)
    site.fill("#id_payee", payee)
    site.click("#send")


def transfer_in_the_browser(demo: Demo, browser: Any) -> float:
    """The README's steps 1 to 3 and more; the seconds from the demo's start until the
    first transfer showed, once. Each page on the way, the bank's and the simulator's,
    is read for its heading and actions and checked by axe-core (tests/accessibility.py)."""
    axe = axe_if_installed()
    context = browser.new_context(viewport={"width": 880, "height": 600})
    site = context.new_page()
    phone = context.new_page()
    for page in (site, phone):
        page.set_default_timeout(TIMEOUT_MS)
    try:
        # Sign in with HyperID: allauth's OpenID Connect login, against the
        # simulator's sign-in page; the site keeps alice's HyperID tokens.
        site.goto(f"{demo.web}/")
        assert_page(site, axe, "Sign in", ["Sign in with HyperID"])
        site.click("#sign-in")
        site.wait_for_url(f"{demo.simulator}/**")
        assert_page(site, axe, "Sign in with HyperID", ["Sign in", "Cancel"])
        site.fill("input[name=subject]", USERNAME)
        site.click("button.sign-in")
        site.wait_for_url(f"{demo.web}/")
        assert "You are signed in with HyperID" in (site.text_content("main") or "")
        assert_page(site, axe, f"Hello, {USERNAME}", HOME_ACTIONS)

        # Invalid input comes back with its error, and no push reaches the phone.
        send_transfer(demo, site, "-5")
        site.wait_for_selector(".errorlist")
        assert_page(site, axe, "Transfer money", ["Send"])
        open_phone(phone, f"{demo.simulator}/authenticator/{USERNAME}/")
        assert phone.locator(".push").count() == 0

        # The transfer waits for approval: the bank shows the code to match.
        send_transfer(demo, site, "250")
        site.wait_for_selector(".hyperid-mfa-code")
        code = (site.text_content(".hyperid-mfa-code") or "").strip()
        assert re.fullmatch(r"\d\d", code)
        assert "Transfer 250.00 EUR to Bob?" in (site.text_content(".hyperid-mfa-question") or "")
        screenshot(site, "approval-page.png")
        site.emulate_media(color_scheme="dark")
        screenshot(site, "approval-page-dark.png")
        site.emulate_media(color_scheme="light")
        assert_page(site, axe, "Approve this action on your phone", ["Cancel"])

        # The phone shows the same question and offers the code among others.
        open_phone(phone, f"{demo.simulator}/authenticator/{USERNAME}/")
        phone.wait_for_selector(".push")
        assert phone.locator(".push").count() == 1
        assert phone.text_content(".push-question") == "Transfer 250.00 EUR to Bob?"
        offered = phone.locator("input[name=code]").evaluate_all("els => els.map(e => e.value)")
        assert code in offered
        assert len(offered) == 3
        phone.click(f"label.choice:has(input[value='{code}'])")
        screenshot(phone, "authenticator-page.png")
        assert_page(phone, axe, f"{USERNAME}'s phone", ["Deny", "Approve"])
        phone.click("button.approve")
        phone.wait_for_selector("[data-outcome=approved]")

        # The bank's page carries on by itself and the transfer ran, once.
        site.wait_for_url(f"{demo.web}/transfers/")
        assert "Transferred 250.00 EUR to Bob." in (site.text_content(".messages") or "")
        assert site.locator("tr.transfer").count() == 1
        assert_page(site, axe, "Transfers", [])
        transferred = time.monotonic() - demo.started
        site.reload()
        assert site.locator("tr.transfer").count() == 1

        # The same transfer again needs a new approval: it is not run on the old one.
        send_transfer(demo, site, "250")
        site.wait_for_selector(".hyperid-mfa-code")
        site.goto(f"{demo.web}/transfers/")
        assert site.locator("tr.transfer").count() == 1

        # An approval of 250 to Bob, then the same URL with another body whose
        # Content-Type is spelled in capitals: Django still reads the form; so does
        # the gate, and the other values need their own approval.
        form_attack_in_the_bank(demo, context)
        site.goto(f"{demo.web}/transfers/")
        assert site.locator("tr.transfer").count() == 2
        assert "Mallory" not in (site.text_content("table") or "")
        return transferred
    except BaseException:
        ARTIFACTS.mkdir(exist_ok=True)
        site.screenshot(path=str(ARTIFACTS / "demo-site.png"), full_page=True)
        phone.screenshot(path=str(ARTIFACTS / "demo-phone.png"), full_page=True)
        raise
    finally:
        context.close()


def approve_on_the_phone(demo: Demo, phone: Any, subject: str, code: str) -> None:
    """``subject``'s phone page: pick ``code`` on the one push waiting and approve it."""
    open_phone(phone, f"{demo.simulator}/authenticator/{subject}/")
    phone.wait_for_selector(".push")
    phone.click(f"label.choice:has(input[value='{code}'])")
    phone.click("button.approve")
    phone.wait_for_selector("[data-outcome=approved]")


def admin_in_the_browser(demo: Demo, browser: Any) -> None:
    """Staff change a payee's IBAN and refund 14 transfers in the bank's admin: each
    waits for the approval on the phone of the HyperID account ``admin``."""
    axe = axe_if_installed()
    context = browser.new_context(viewport={"width": 1100, "height": 640})
    site = context.new_page()
    phone = context.new_page()
    for page in (site, phone):
        page.set_default_timeout(TIMEOUT_MS)
    new_iban = "DE02120300000000202051"
    try:
        site.goto(f"{demo.web}/admin/login/")
        site.fill("#id_username", ADMIN_USERNAME)
        site.fill("#id_password", ADMIN_PASSWORD)
        site.click("input[type=submit]")
        site.wait_for_url(f"{demo.web}/admin/")

        site.goto(f"{demo.web}/admin/bank/payee/")
        site.click("text=Bob's bakery")

        # No HyperID tokens yet: the admin's answer offers the HyperID sign-in, which
        # goes straight to HyperID and brings the staff member back to the approval
        # of the change, the new IBAN kept.
        site.fill("#id_iban", new_iban)
        site.click("input[name=_save]")
        assert (site.text_content("#hyperid-mfa-heading") or "").strip() == "Sign in with HyperID"
        site.click("#hyperid-mfa-reauthenticate")
        site.wait_for_url(f"{demo.simulator}/**")
        site.fill("input[name=subject]", ADMIN_USERNAME)
        site.click("button.sign-in")
        site.wait_for_selector(".hyperid-mfa-code")
        assert (site.text_content(".hyperid-mfa-question") or "").strip() == (
            f"Change IBAN of Bob's bakery from DE89370400440532013000 to {new_iban}?"
        )
        assert site.is_visible("#site-name")  # the admin's own layout
        screenshot(site, "admin-approval-page.png")
        assert_page(site, axe, "Approve this action on your phone", ["Cancel"], "#hyperid-mfa")
        code = (site.text_content(".hyperid-mfa-code") or "").strip()
        approve_on_the_phone(demo, phone, ADMIN_USERNAME, code)
        site.wait_for_url(f"{demo.web}/admin/bank/payee/")
        assert new_iban in (site.text_content("#result_list") or "")

        # The 14 refunds waiting, in one bulk action and one approval.
        site.goto(f"{demo.web}/admin/bank/refund/?state__exact=requested")
        assert site.locator("#result_list tbody tr").count() == 14
        site.check("#action-toggle")
        site.select_option("select[name=action]", "mark_refunded")
        site.click("button[name=index]")
        site.wait_for_selector(".hyperid-mfa-code")
        assert (site.text_content(".hyperid-mfa-question") or "").strip() == (
            "Run 'Mark as refunded' on 14 refunds?"
        )
        approve_on_the_phone(
            demo, phone, ADMIN_USERNAME, (site.text_content(".hyperid-mfa-code") or "").strip()
        )
        site.wait_for_selector(".messagelist .success")
        assert "Refunded 14 of 14." in (site.text_content(".messagelist") or "")

        # The dashboard shows the demo's traffic: alice's transfers, the admin's changes.
        site.goto(f"{demo.web}/admin/hyperid_mfa/mfarequest/")
        site.click("text=Dashboard")
        site.wait_for_selector("#hm-pushes")
        sent = int(site.text_content("[data-figure=sent]") or "0")
        assert sent >= 5
        assert site.locator("#hm-pushes g[data-series=sent] rect").count() >= 1
        site.set_viewport_size({"width": 1100, "height": 1500})
        screenshot(site.locator("#content"), "admin-dashboard.png")
        # And the same site's Prometheus metrics, for the staff member signed in.
        metrics = site.request.get(f"{demo.web}/metrics/")
        assert metrics.status == 200
        assert 'hyperid_mfa_pushes_total{action="bank.transfer",outcome="sent"}' in metrics.text()
    except BaseException:
        ARTIFACTS.mkdir(exist_ok=True)
        site.screenshot(path=str(ARTIFACTS / "demo-admin.png"), full_page=True)
        phone.screenshot(path=str(ARTIFACTS / "demo-admin-phone.png"), full_page=True)
        raise
    finally:
        context.close()


def form_attack_in_the_bank(demo: Demo, context: Any) -> None:
    """Over real HTTP with CSRF checks on, in the example bank: a spelled-differently
    Content-Type cannot consume an approval on other values."""
    token = next(c["value"] for c in context.cookies() if c["name"] == "csrftoken")
    url = f"{demo.web}/transfer/?amount=250&payee=Bob"

    def post(body: str, content_type: str) -> Any:
        return context.request.post(
            url,
            data=f"{body}&csrfmiddlewaretoken={token}",
            headers={"Content-Type": content_type, "Accept": "application/json"},
            max_redirects=0,
        )

    pending = post("amount=250&payee=Bob", "application/x-www-form-urlencoded")
    assert pending.status == 403, pending.text()
    push = pending.json()["mfa_request"]
    answered = requests.post(
        f"{demo.simulator}/authenticator/{USERNAME}/{push['transaction_id']}/",
        data={"decision": "approve", "code": push["code"]},
        timeout=10,
    )
    assert 'data-outcome="approved"' in answered.text

    attack = post("amount=9999&payee=Mallory", "Application/X-WWW-Form-Urlencoded")
    assert attack.status == 403, attack.text()
    assert attack.json()["code"] == "mfa_pending"  # a push of its own, not a transfer

    done = post("amount=250&payee=Bob", "application/x-www-form-urlencoded")
    assert done.status == 302, done.text()


def transfer_through_the_api(demo: Demo) -> None:
    api = f"{demo.web}/api/transfers/"
    auth = (USERNAME, PASSWORD)
    transfer = {"amount": "10", "payee": "Carol"}
    with requests.Session() as http:
        refused = http.post(api, data={"amount": "-1", "payee": "Carol"}, auth=auth, timeout=10)
        assert refused.status_code == 400, refused.text
        assert "amount" in refused.json()

        pending = http.post(api, data=transfer, auth=auth, timeout=10)
        assert pending.status_code == 403, pending.text
        body = pending.json()
        assert body["code"] == "mfa_pending"
        assert body["mfa_request"]["question"] == "Transfer 10.00 EUR to Carol?"

        # The phone, answered the way its form does.
        phone = http.post(
            f"{demo.simulator}/authenticator/{USERNAME}/{body['mfa_request']['transaction_id']}/",
            data={"decision": "approve", "code": body["mfa_request"]["code"]},
            timeout=10,
        )
        assert 'data-outcome="approved"' in phone.text

        made = http.post(api, data=transfer, auth=auth, timeout=10)
        assert made.status_code == 201, made.text
        assert made.json()["channel"] == "api"
        again = http.post(api, data=transfer, auth=auth, timeout=10)
        assert again.status_code == 403
        assert again.json()["code"] == "mfa_pending"

        listed = http.get(api, auth=auth, timeout=10).json()
        assert sorted((t["amount"], t["payee"], t["channel"]) for t in listed) == [
            ("10.00", "Carol", "api"),
            ("250.00", "Bob", "web"),
            ("250.00", "Bob", "web"),
        ]


def fresh_clone(target: Path) -> Path:
    """A ``git clone`` of the committed HEAD, as a newcomer gets it."""
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("needs git and a git checkout of the project")
    subprocess.run(
        ["git", "clone", "--quiet", "--no-hardlinks", str(REPO), str(target)],
        check=True,
        timeout=120,
    )
    return target


@pytest.fixture(scope="module")
def shared_clone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One clone for the tests that only start and stop the demo."""
    return fresh_clone(tmp_path_factory.mktemp("demo") / "clone")


@pytest.mark.browser
def test_the_readme_demo_runs_from_a_fresh_clone_and_an_approved_transfer_runs_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clone = fresh_clone(tmp_path / "clone")
    web_port, simulator_port, spare_port = free_ports(3)
    from playwright.sync_api import sync_playwright

    with Demo(clone, web_port, simulator_port, tmp_path / "demo.log") as demo:
        first_page = demo.wait_until_up()
        banner = demo.log()
        assert f"{demo.simulator}/authenticator/alice/" in banner
        assert "alice / alice-demo" in banner
        assert "admin / admin-demo" in banner

        with sync_playwright() as playwright:
            browser = launch(playwright)
            try:
                transferred = transfer_in_the_browser(demo, browser)
                admin_in_the_browser(demo, browser)
            finally:
                browser.close()
        transfer_through_the_api(demo)

        # Started again while it runs: a clear message about the port, nothing started.
        spare = {"HYPERID_MFA_DEMO_SIMULATOR_PORT": str(spare_port)}
        for extra, port in (({}, simulator_port), (spare, web_port)):
            second = demo.run(f"127.0.0.1:{web_port}", env=extra)
            assert second.returncode == 1
            assert f"127.0.0.1:{port}" in second.stderr
            assert "is not free" in second.stderr
            assert "already running" in second.stderr
            assert "Traceback" not in second.stdout + second.stderr

        # Ctrl-C stops the dev server, and the script stops the simulator.
        assert demo.interrupt() in (0, 130)
        demo.assert_stopped_entirely()
    if OWN_VENV:
        with capsys.disabled():
            print(
                f"\n./scripts/demo in a fresh clone, in its own virtualenv: the first page "
                f"after {first_page:.0f} s, the transfer shown once after {transferred:.0f} s"
            )


def sigint_ignored(pid: int) -> bool | None:
    """Whether SIGINT is ignored in process ``pid`` (None where /proc cannot tell)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    ignored = int(next(line for line in status.splitlines() if line.startswith("SigIgn:"))[7:], 16)
    return bool(ignored & (1 << (signal.SIGINT - 1)))


def test_ctrl_c_stops_the_demo_even_when_it_was_started_with_sigint_ignored(
    shared_clone: Path, tmp_path: Path
) -> None:
    web_port, simulator_port = free_ports(2)
    demo = Demo(shared_clone, web_port, simulator_port, tmp_path / "demo.log", sigint_ignored=True)
    with demo:
        demo.wait_until_up()
        assert demo.process is not None
        assert sigint_ignored(demo.process.pid) in (True, None)  # what the test is about

        assert demo.interrupt() in (0, 130)
        demo.assert_stopped_entirely()


def test_sigterm_to_the_script_stops_the_site_and_the_simulator_within_seconds(
    shared_clone: Path, tmp_path: Path
) -> None:
    web_port, simulator_port = free_ports(2)
    with Demo(shared_clone, web_port, simulator_port, tmp_path / "demo.log") as demo:
        demo.wait_until_up()

        assert demo.terminate(seconds=10) == 143
        demo.assert_stopped_entirely()
