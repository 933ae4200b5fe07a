"""The success page in a real headless browser: Debian's chromium, driven by selenium.

Nothing is downloaded: selenium is pointed at /usr/bin/chromedriver and /usr/bin/chromium, and
SE_OFFLINE keeps Selenium Manager off the network. Without them the test skips, saying why;
.ci/run installs them (apt-get install chromium chromium-driver), so CI runs it.

Selenium's calls block, and the bot's web server runs on this test's event loop, so each call
goes to a thread. The page refreshes itself every second here (3 s in production).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from tests.fakes.fake_stripe import StripeWorld
from tests.fakes.fake_telegram import BOT_LINK

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
T = TypeVar("T")

pytestmark = [
    pytest.mark.skipif(
        not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
        reason="needs Debian's chromium and chromedriver: apt-get install -y chromium "
        "chromium-driver (.ci/run installs them)",
    ),
    # One database is enough: the page's states are tested on both in test_stripe_landing.py.
    pytest.mark.parametrize("database", ["sqlite"], indirect=True),
]


@pytest.fixture
def browser(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Headless chromium through the system chromedriver, with a profile of its own."""
    webdriver = pytest.importorskip(
        "selenium.webdriver", reason="selenium is not installed: pip install -e '.[test]'"
    )
    from selenium.webdriver.chrome.service import Service

    monkeypatch.setenv("SE_OFFLINE", "true")  # Selenium Manager: never fetch a driver
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless=new",
        "--no-sandbox",  # CI runs as root
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-proxy-server",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'profile'}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(10)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
async def landing(landing: StripeWorld) -> AsyncIterator[StripeWorld]:
    """The landing pages' world, its "confirming" page refreshing every second."""
    landing.service.landing.refresh_seconds = 1
    yield landing


async def off_loop(call: Callable[[], T]) -> T:
    return await asyncio.to_thread(call)


async def until(browser: Any, read: Callable[[Any], T], want: T, attempts: int = 150) -> T:
    """What `read(browser)` shows, once it shows `want`. The "confirming" page reloads on its
    own, so an element read mid-reload is stale: that read just counts as not yet."""
    from selenium.common.exceptions import WebDriverException

    seen: object = None
    for _ in range(attempts):
        try:
            seen = await off_loop(lambda: read(browser))
        except WebDriverException as reloading:
            seen = reloading
        if seen == want:
            return want
        await asyncio.sleep(0.1)
    raise AssertionError(f"the page showed {seen!r}, never {want!r}")


def h1(browser: Any) -> str:
    from selenium.webdriver.common.by import By

    return str(browser.find_element(By.TAG_NAME, "h1").text)


def main(browser: Any) -> str:
    from selenium.webdriver.common.by import By

    return str(browser.find_element(By.TAG_NAME, "main").text)


def href(text: str) -> Callable[[Any], str]:
    from selenium.webdriver.common.by import By

    return lambda browser: str(browser.find_element(By.LINK_TEXT, text).get_attribute("href"))


async def test_success_page_in_a_browser_confirms_then_links_back_to_the_chat(
    landing: StripeWorld, browser: Any
) -> None:
    """Chromium opens the success page as Stripe's redirect would: it renders "confirming";
    after the webhook paid the order it shows "payment received" by itself, with the Telegram
    deep link; its language switch shows the same in Chinese."""
    from selenium.webdriver.common.by import By

    _order, cs = await landing.buy("alice")
    url = f"http://127.0.0.1:{landing.web.port}/pay/success?session_id={cs}"
    await off_loop(lambda: browser.get(url))
    await until(browser, h1, "Confirming your payment")
    await until(browser, lambda b: b.title, "Confirming your payment")
    await until(browser, lambda b: "This page updates by itself" in main(b), True)
    assert os.environ.get("SE_OFFLINE") == "true"

    await landing.pay(cs)
    await until(browser, h1, "Payment received")  # the page's own refresh, no reload by us
    await until(browser, href("Open Telegram"), BOT_LINK)
    assert "Payment received: back to the chat." in await off_loop(lambda: main(browser))

    switch = await off_loop(lambda: browser.find_element(By.LINK_TEXT, "简体中文"))
    await off_loop(switch.click)
    await until(browser, h1, "已收到付款")
    lang = await off_loop(lambda: browser.find_element(By.TAG_NAME, "html").get_attribute("lang"))
    assert lang == "zh-Hans"
    await until(browser, href("打开 Telegram"), BOT_LINK)


async def test_cancel_page_in_a_browser(landing: StripeWorld, browser: Any) -> None:
    """The cancel page renders in Chinese when asked, saying nothing was charged."""
    url = f"http://127.0.0.1:{landing.web.port}/pay/cancel?lang=zh"
    await off_loop(lambda: browser.get(url))
    assert await off_loop(lambda: h1(browser)) == "付款已取消"
    assert "没有扣款" in await off_loop(lambda: main(browser))
