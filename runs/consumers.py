from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from runs.broadcast import RUNS_GROUP, run_group
from runs.models import Run


class RunConsumer(AsyncJsonWebsocketConsumer):  # type: ignore[misc]
    """Live updates of one run. Backfill is the browser's job: it re-reads the database on (re)connect."""

    async def connect(self) -> None:
        user = self.scope.get("user")
        self.run_id = int(self.scope["url_route"]["kwargs"]["run_id"])
        if user is None or not user.is_authenticated or not await self._run_exists():
            await self.close(code=4403)
            return
        self.group = run_group(self.run_id)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def run_update(self, event: dict[str, Any]) -> None:
        await self.send_json(event["payload"])

    @database_sync_to_async
    def _run_exists(self) -> bool:
        return Run.objects.filter(pk=self.run_id).exists()


class RunListConsumer(AsyncJsonWebsocketConsumer):  # type: ignore[misc]
    """Status changes of every run, for the runs list."""

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=4403)
            return
        await self.channel_layer.group_add(RUNS_GROUP, self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        await self.channel_layer.group_discard(RUNS_GROUP, self.channel_name)

    async def run_update(self, event: dict[str, Any]) -> None:
        await self.send_json({"run_id": event["run_id"], **event["payload"]})
