"""/docs and /redoc work offline: their assets come from the API, not a CDN (the banner advertises /docs)."""

from __future__ import annotations

import re
from pathlib import Path

from tests.integration.test_governance_harness import make_gov


def test_docs_pages_load_their_assets_from_the_api_itself(tmp_path: Path) -> None:
    gov = make_gov(f"sqlite:///{tmp_path / 'warden.db'}", with_keys=False)
    for page in ("/docs", "/redoc"):
        html = gov.client.get(page)
        assert html.status_code == 200
        urls = re.findall(r'(?:src|href)="([^"]+)"', html.text)
        assert urls and all(u.startswith("/") for u in urls), (page, urls)  # nothing from another host
        for url in urls:
            asset = gov.client.get(url)
            assert asset.status_code == 200 and len(asset.content) > 1000, url
    assert "cdn" not in gov.client.get("/docs").text.lower()
    gov.engine.dispose()
