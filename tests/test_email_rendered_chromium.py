"""The announcement email as people see it: sent for real through the SMTP path to aiosmtpd on
loopback, and the HTML part of what ARRIVED rendered in real headless Chromium at a phone's
width (375 px) and a desktop's (1024 px): nothing overflows sideways, the logo has its alt
text, the Acknowledge button is there to press. The HR preview shows the same bytes.

Screenshots go to docs/screenshots/email-375.png and email-1024.png when
BULLETIN_SCREENSHOTS=1 (run that way to refresh the README's), otherwise to a temporary
directory so a normal run leaves the tree clean.
"""

from __future__ import annotations

import struct
import threading
import zlib
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from bulletin import conf
from bulletin.dispatch.sender import Dispatcher
from bulletin.domain.models import Announcement, Delivery, DeliveryState
from bulletin.domain.roles import ANNOUNCER
from tests import factories
from tests.harness import SmtpSink

# Transactional: Playwright's event loop runs in this thread beside the ORM (as in
# test_hr_browser), and the in-memory database's shared cache locks otherwise.
pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

WIDTHS = (375, 1024)
BODY = "\n\n".join(
    [
        "Hello {{ first_name }},",
        "From **Monday 4 May** the London office moves to the new building. Please read the "
        "[moving guide](https://intranet.example.com/facilities/moving-guide-2026-london-office"
        "-new-building-floor-plans-and-desk-booking) before Friday.",
        "![Floor plan of the new building](LOGO_HOST/floor-plan.png)",
        "## What changes",
        "- Desks are booked in the app\n- The canteen opens at 08:00\n- Bikes go in the basement",
        "> Questions? Ask the facilities desk on the ground floor.",
        "A long reference nobody can break: REF-" + "X" * 80,
    ]
)


def png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A solid-colour PNG, written by hand so the test needs no image library."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunks = chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + chunks


IMAGES = {
    "/logo.png": png(160, 40, (255, 214, 10)),
    "/floor-plan.png": png(1200, 500, (120, 160, 200)),  # wider than any phone
}


class Images(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        data = IMAGES.get(self.path)
        self.send_response(200 if data else 404)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", str(len(data or b"")))
        self.end_headers()
        self.wfile.write(data or b"")

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the test's output is its assertions."""


@pytest.fixture
def image_host() -> Iterator[str]:
    """A loopback HTTP server for the logo and the body's image (the email's only fetches)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), Images)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def branded(settings: Any, image_host: str) -> None:
    settings.BULLETIN = replace(
        conf.load(
            {
                "BULLETIN_ORG_NAME": "Acme Corporation",
                "BULLETIN_LOGO_URL": f"{image_host}/logo.png",
                "BULLETIN_BRAND_COLOR": "#1f4e8c",
                "BULLETIN_EMAIL_FOOTER": "Acme Corporation · 1 Harbour Street, London\n"
                "Questions about this email: people@acme.example",
                "BULLETIN_SENDERS": "People Team <people@acme.example>",
                "BULLETIN_SITE_URL": "https://bulletin.acme.example",
            }
        )
    )


def arrived_html(smtp: SmtpSink, image_host: str) -> str:
    """Send one real announcement, asking for acknowledgement, from the People Team; the HTML
    part of what the SMTP server received."""
    factories.employees(1, department="Facilities")
    factories.fired(
        title="The London office moves on 4 May",
        body=BODY.replace("LOGO_HOST", image_host),
        requires_ack=True,
        sender="People Team <people@acme.example>",
        audience_kind="department",
        audience_values=["Facilities"],
    )
    Dispatcher().run_until_idle()
    assert list(Delivery.objects.values_list("state", flat=True)) == [DeliveryState.SENT]
    (received,) = smtp.received
    assert received.sender == "people@acme.example"
    assert received.message["From"] == "People Team <people@acme.example>"
    part = received.message.get_body(("html",))
    assert part is not None
    return str(part.get_content())


# What sticks out past the right edge of the viewport: the document, and each element.
OVERFLOW = """() => {
  const width = window.innerWidth;
  const wide = [];
  for (const element of document.querySelectorAll('body *')) {
    const box = element.getBoundingClientRect();
    if (box.width > 0 && box.right > width + 0.5) {
      wide.push(`${element.tagName.toLowerCase()}.${element.className} right=${box.right}`);
    }
  }
  return {scrollWidth: document.documentElement.scrollWidth, innerWidth: width, wide};
}"""


def test_the_email_that_arrived_fits_a_phone_and_a_desktop_in_chromium(
    smtp_settings: SmtpSink, branded: None, image_host: str, browser: Any, shots: Path
) -> None:
    html = arrived_html(smtp_settings, image_host)
    for width in WIDTHS:
        page = browser.new_page(viewport={"width": width, "height": 900})
        page.set_content(html, wait_until="load")
        fit = page.evaluate(OVERFLOW)
        assert fit["scrollWidth"] <= fit["innerWidth"], fit
        assert fit["wide"] == [], fit
        logo = page.locator("img.logo")
        assert logo.get_attribute("alt") == "Acme Corporation"
        assert logo.evaluate("image => image.naturalWidth") == 160  # it loaded
        images = page.locator("img")
        for index in range(images.count()):
            assert images.nth(index).get_attribute("alt")
        button = page.locator("#acknowledge")
        assert button.is_visible() and button.inner_text() == "Acknowledge"
        box = button.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width
        assert str(button.get_attribute("href")).startswith(
            "https://bulletin.acme.example/acknowledge/"
        )
        page.screenshot(path=str(shots / f"email-{width}.png"), full_page=True)
        page.close()


# The colours a reader sees of the sheet's background, the title and the body text.
COLOURS = """() => {
  const colour = (selector, property) =>
    getComputedStyle(document.querySelector(selector))[property];
  return [colour('.main', 'backgroundColor'), colour('.title', 'color'),
          colour('.content p', 'color'), colour('.foot', 'backgroundColor')];
}"""


def test_in_dark_mode_the_email_turns_dark_with_light_text(
    smtp_settings: SmtpSink, branded: None, image_host: str, browser: Any
) -> None:
    html = arrived_html(smtp_settings, image_host)
    page = browser.new_page(viewport={"width": 375, "height": 900}, color_scheme="dark")
    page.set_content(html, wait_until="load")
    sheet, title, text, foot = page.evaluate(COLOURS)
    page.close()
    assert sheet == "rgb(28, 33, 40)" and foot == "rgb(22, 26, 32)"
    assert title == "rgb(243, 244, 246)" and text == "rgb(229, 231, 235)"


def test_the_hr_preview_is_the_html_part_as_the_smtp_path_writes_it(
    smtp_settings: SmtpSink, branded: None, image_host: str
) -> None:
    arrived = arrived_html(smtp_settings, image_host)
    ann = factories.person("ann", ANNOUNCER)
    client = Client()
    client.force_login(ann)
    item = Announcement.objects.get()
    response = client.get(f"/hr/{item.pk}/email-preview/")
    assert response.status_code == 200
    assert response["X-Frame-Options"] == "SAMEORIGIN"
    assert "script-src" not in response["Content-Security-Policy"]
    preview = response.content.decode()
    # The same document (head, styles, layout); only the reader and their links differ.
    assert preview.split("<body", 1)[0] == arrived.split("<body", 1)[0]
    assert "Acme Corporation" in preview and 'id="acknowledge"' in preview
    detail = client.get(f"/hr/{item.pk}/").content.decode()
    assert f'src="/hr/{item.pk}/email-preview/"' in detail
    assert 'id="email-width-phone"' in detail and 'id="email-width-desktop"' in detail


def test_the_hr_page_shows_the_email_at_a_phones_width_then_a_desktops(
    smtp_settings: SmtpSink, branded: None, image_host: str, browser: Any, live_server: Any
) -> None:
    arrived_html(smtp_settings, image_host)
    client = Client()
    client.force_login(factories.person("ann", ANNOUNCER))
    session = client.cookies["sessionid"].value
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.add_cookies([{"name": "sessionid", "value": session, "url": live_server.url}])
    page = context.new_page()
    page.goto(f"{live_server.url}/hr/{Announcement.objects.get().pk}/")
    frame = page.locator("#email-preview-frame")
    frame.scroll_into_view_if_needed()
    email = page.frame_locator("#email-preview-frame")
    email.locator("#acknowledge").wait_for(state="visible")
    assert email.locator("img.logo").get_attribute("alt") == "Acme Corporation"
    assert frame.bounding_box()["width"] == 375  # type: ignore[index]
    page.locator("label[for=email-width-desktop]").click()
    page.wait_for_function(
        "() => document.querySelector('#email-preview-frame').getBoundingClientRect().width"
        " === 1024"
    )
    context.close()
