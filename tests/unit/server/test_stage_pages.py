"""The three stage pages are one template (web/stage.html), each told its view."""

from __future__ import annotations

import re

import pytest

from tests.unit.server.fakes import running_app


@pytest.mark.parametrize(
    ("page", "view", "heading", "title"),
    [
        ("studio", "studio", "Studio", "interlive: studio"),
        ("cohost", "cohost", "Co-host", "interlive: co-host"),
        ("audience", "audience", "Audience", "interlive: watch the stage"),
    ],
)
async def test_each_stage_page_is_the_app_with_its_view(
    page: str, view: str, heading: str, title: str
) -> None:
    async with running_app() as app:
        response = await app.client.get(f"/static/{page}.html")
        assert response.status == 200
        assert response.content_type == "text/html"
        html = await response.text()
    assert f'<body data-view="{view}" class="stage-app">' in html
    assert f"<h1>{heading}</h1>" in html and f"<title>{title}</title>" in html
    assert "{{" not in html
    assert re.search(r'<script type="module" src="/static/stage-app.js"', html)


async def test_other_static_files_and_unknown_pages_are_as_before() -> None:
    async with running_app() as app:
        assert (await app.client.get("/static/stage-app.js")).status == 200
        assert (await app.client.get("/static/join.html")).status == 200
        assert (await app.client.get("/static/backstage.html")).status == 404
