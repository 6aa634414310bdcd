"""``mailsift serve``: the gateway (SMTP, milter), the HTTP API and the web UI in one process.

Everything comes from one TOML config with sane defaults: with no config at all it runs on an
embedded SQLite store under ./data and needs no other service.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Coroutine
from typing import Any

from mailsift import __version__
from mailsift.config import load_settings

__all__ = ["register", "run_gateway"]

log = logging.getLogger("mailsift")


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("serve", help="run the gateway, HTTP API and web UI",
                       description=__doc__)
    p.add_argument("--config", metavar="FILE", help="settings file (default: ./mailsift.toml, "
                   "else /etc/mailsift/mailsift.toml)")
    p.add_argument("--log-level", default=None, choices=("DEBUG", "INFO", "WARNING", "ERROR"),
                   help="default: [log] level (INFO)")
    p.set_defaults(func=run)


async def _spool_retry(parts: Any, stop: asyncio.Event) -> None:
    gw = parts.settings.gateway
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), gw.spool_retry_seconds)
        if stop.is_set():
            break
        try:
            done = await parts.gateway.deliverer.retry_spool(time.time(),
                                                             gw.spool_retry_seconds)
            if done:
                log.info("spool: %d message(s) delivered", done)
        except Exception as exc:  # keep retrying; the spool is durable
            log.warning("spool retry failed: %s", exc)


def build_http_app(parts: Any) -> Any:
    """One app: the ``/v1`` REST API (tokens), rollout and incidents, the scan endpoints."""
    from mailsift.interfaces.http.app import create_app
    from mailsift.interfaces.http.deps import get_caller
    from mailsift.interfaces.http.routes_rollout import router as rollout_router
    from mailsift.interfaces.http.scan_api import build_scan_router
    from mailsift.services.gateway import message_ref
    from mailsift.services.store_services import StoreServices

    gateway = parts.gateway

    async def rescan(raw: bytes, env: Any) -> Any:
        return await gateway.scan(raw, env, message_ref(raw, env))

    services = StoreServices.build(parts.store, rescan=rescan, settings=parts.settings)
    from mailsift.interfaces.http.routes_dmarc import router as dmarc_router

    app = create_app(services, routers=[rollout_router, dmarc_router],
                     api_docs=parts.settings.http.api_docs)
    app.state.rollout = parts.rollout
    guard = get_caller if parts.settings.http.scan_requires_token else None
    app.include_router(build_scan_router(gateway, max_bytes=parts.settings.http.max_message_bytes,
                                         scan_guard=guard))
    from mailsift.interfaces.http.routes_mailflow import build_mailflow_router

    app.include_router(build_mailflow_router(gateway,
                                             max_bytes=parts.settings.http.max_message_bytes))
    # the web console at / (issue 9): store and rollout only, so it works when scanning does not
    from mailsift.interfaces.web import build_web_router

    app.include_router(build_web_router(services, settings=parts.settings, rollout=parts.rollout))
    return app


async def run_gateway(settings: Any, stop: asyncio.Event,
                      ready: asyncio.Future[dict[str, int]] | None = None) -> None:
    """Run until ``stop`` is set. ``ready`` receives the bound ports (port 0 = any)."""
    from mailsift.app import build_gateway
    from mailsift.interfaces.smtp.server import SmtpListener

    parts = build_gateway(settings)
    _report_mailbox(parts)
    ports: dict[str, int] = {}
    tasks: list[asyncio.Task[Any]] = []
    smtp = None
    milter = None
    http_server = None
    try:
        await parts.scans.warm_up()
        if settings.smtp.enabled:
            smtp = SmtpListener(parts.gateway, settings.smtp)
            ports["smtp"] = await smtp.start()
        if settings.milter.enabled:  # milter wiring (interfaces/milter)
            from mailsift.interfaces.milter import MilterListener

            milter = MilterListener(parts.gateway, settings.milter, settings.gateway)
            ports["milter"] = await milter.start()
        if settings.http.enabled:
            import socket

            import uvicorn

            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((settings.http.host, settings.http.port))
            ports["http"] = sock.getsockname()[1]
            # X-Forwarded-For is believed only from [http] trusted_proxies: uvicorn's default
            # trusts it from 127.0.0.1, so any local client could pick its address and dodge
            # the per-address sign-in throttle
            proxies = settings.http.trusted_proxies
            config = uvicorn.Config(build_http_app(parts), log_level="warning",
                                    lifespan="off", proxy_headers=bool(proxies),
                                    forwarded_allow_ips=list(proxies) or None)
            http_server = uvicorn.Server(config)
            tasks.append(asyncio.create_task(http_server.serve(sockets=[sock]), name="http"))
            log.info("HTTP API on http://%s:%d/", settings.http.host, ports["http"])
        tasks.append(asyncio.create_task(_spool_retry(parts, stop), name="spool"))
        tasks.append(asyncio.create_task(parts.watcher.run(stop), name="rollout"))
        if settings.dmarc_reports.send:  # aggregate reports on their UTC schedule (issue 25)
            from mailsift.app import build_report_sender
            from mailsift.services.dmarc.sending import run_schedule

            sender = build_report_sender(settings, parts.store)
            tasks.append(asyncio.create_task(run_schedule(sender, stop), name="dmarc"))
        elif settings.dmarc_reports.record:  # recorded, not sent: still purged
            from mailsift.services.dmarc.sending import run_purge
            from mailsift.store.dmarc import DmarcStore

            dmarc = DmarcStore(parts.store.engine, parts.store.clock)
            tasks.append(asyncio.create_task(
                run_purge(dmarc, settings.dmarc_reports, parts.store.clock, stop),
                name="dmarc"))
        from mailsift.services.enduser_schedule import EndUserSchedule

        gateway = parts.gateway  # its flow rules follow the registry: notices read them there
        schedule = EndUserSchedule(  # digests, request notices, flow-rule notices
            parts.store, settings,
            flow=lambda: gateway.flow.rules.settings if gateway.flow else settings.mailflow)
        tasks.append(asyncio.create_task(schedule.run(stop), name="digests"))
        log.info("mailsift ready (store: %s, scan workers: %d, next hop %s:%d)",
                 parts.store.backend, parts.scans.workers, settings.gateway.next_hop_host,
                 settings.gateway.next_hop_port)
        if ready is not None and not ready.done():
            ready.set_result(ports)
        await stop.wait()
    finally:
        log.info("mailsift stopping")
        if smtp is not None:
            await smtp.stop()
        if milter is not None:  # before the recorder closes: in-flight decisions still record
            await milter.stop()
        if http_server is not None:
            http_server.should_exit = True
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(task, 5)
        await parts.aclose()


def _report_mailbox(parts: Any) -> None:
    """Reports sent to ``[enduser.report_mailbox] addresses`` enter the reports triage."""
    box = parts.settings.enduser.report_mailbox
    if not box.addresses:
        return
    from mailsift.services.report_mailbox import ReportMailbox
    from mailsift.services.store_services import StoreServices

    services = StoreServices.build(parts.store, settings=parts.settings)
    mailbox = ReportMailbox(parts.store, services.reports, box)

    def read(result: Any, raw: bytes) -> None:
        if mailbox.label_for(result) is not None:  # on the store's writer thread
            parts.recorder.run_later(lambda: mailbox.accept(raw, result))

    parts.gateway.mailboxes.append(read)


def run_loop(main: Coroutine[Any, Any, None], use_uvloop: bool) -> None:
    """Run ``main`` on uvloop when asked for and installed, else on asyncio's loop."""
    if use_uvloop:
        try:
            import uvloop
        except ImportError:
            log.info("uvloop is not installed; using asyncio's event loop")
        else:
            uvloop.run(main)
            return
    asyncio.run(main)


def run(args: argparse.Namespace) -> int:
    from mailsift.interfaces.cli.logs import configure_logging

    loaded = load_settings(args.config)
    settings = loaded.settings
    target = configure_logging(settings.log, args.log_level)
    log.info("mailsift %s: config %s; logging to %s", __version__, " -> ".join(loaded.layers),
             target)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await run_gateway(settings, stop)

    run_loop(main(), settings.gateway.uvloop)
    return 0
