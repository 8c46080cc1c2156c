"""Services for the gateway tests, written with the service helper.

echo:    answers with what it was sent; path "<id>/sleep/<ms>" answers after ms,
         "<id>/big/<n>" answers with a string of n bytes, "unjson" with a set (no JSON
         value), "fail" raises
         ServiceError(409), "crash" raises RuntimeError.
counted: answers with how many times its handler has run, deduplicated by the client's
         Idempotency-Key, so a retried request is answered from the reply cache.
fanout:  POST {"n": N, "pad": P} to "<id>" sends N records keyed "<id>-<i>" with P bytes of
         padding each to FANOUT_OUT, and answers with the keys, without awaiting anything.
"""
import asyncio
import os

import streamkit

APP_ID = os.environ.get("ECHO_APP_ID", "gateway-echo")
app = streamkit.App(APP_ID)
calls = {"counted": 0}


@streamkit.service(app, os.environ.get("ECHO_TOPIC", f"{APP_ID}-echo"))
async def echo(req: streamkit.ServiceRequest):
    segments = req.segments
    if len(segments) == 3 and segments[1] == "sleep":
        await asyncio.sleep(int(segments[2]) / 1000)
    elif len(segments) == 3 and segments[1] == "big":
        return {"big": "x" * int(segments[2])}
    elif req.path == "unjson":
        return {"ids": {1, 2}}
    elif req.path == "fail":
        raise streamkit.ServiceError(409, "conflict", "this always conflicts")
    elif req.path == "crash":
        raise RuntimeError("boom")
    body = req.body
    return {"method": req.method, "path": req.path, "query": dict(req.query), "body": body,
            "double": body["n"] * 2 if isinstance(body, dict) and "n" in body else None}


@streamkit.service(app, os.environ.get("COUNTED_TOPIC", f"{APP_ID}-counted"),
                   request_id=lambda req: req.request_id)
async def counted(req: streamkit.ServiceRequest):
    calls["counted"] += 1
    return streamkit.Reply(201, {"calls": calls["counted"], "body": req.body})


@streamkit.service(app, os.environ.get("FANOUT_TOPIC", f"{APP_ID}-fanout"))
async def fanout(req: streamkit.ServiceRequest):
    n, pad = req.body["n"], req.body.get("pad", 0)
    keys = [f"{req.path}-{i}" for i in range(n)]
    for key in keys:
        await req.send(os.environ.get("FANOUT_OUT", f"{APP_ID}-fanout-out"), key,
                       {"key": key, "pad": "x" * pad})
    return {"sent": keys}
