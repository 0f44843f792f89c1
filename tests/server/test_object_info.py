"""The server's node catalogue over real HTTP."""

from __future__ import annotations

import asyncio

from aiohttp.test_utils import TestClient, TestServer

from server import create_app


def test_object_info_over_http(runtime) -> None:
    async def scenario() -> None:
        async with TestClient(TestServer(create_app(runtime))) as client:
            response = await client.get("/api/object_info")
            assert response.status == 200
            assert response.content_type == "application/json"
            info = await response.json()
            assert info["SaveImage"]["output_node"] is True
            assert set(info["SaveImage"]) >= {"input", "input_order", "output", "output_is_list", "output_name", "name", "display_name", "description", "category", "output_node"}
            one = await (await client.get("/object_info/ImageScale")).json()
            assert list(one) == ["ImageScale"]
            assert one["ImageScale"]["input_order"]["required"] == ["image", "upscale_method", "width", "height", "crop"]
            assert await (await client.get("/object_info/NoSuchNode")).json() == {}

    asyncio.run(scenario())
