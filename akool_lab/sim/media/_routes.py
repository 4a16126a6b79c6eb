"""The simulator's WebRTC signalling route. Importing this module loads no WebRTC code: aiortc is imported when
the first offer arrives, so ``import akool_lab.sim`` stays light and works without the ``media`` extra.

``POST /_sim/sessions/{session_id}/webrtc/offer`` with ``{"type": "offer", "sdp": ..., "token": WS_TOKEN}`` (or
the API key in ``x-api-key`` instead of the token) answers ``{"code": 1000, "data": {"type": "answer", "sdp": ...}}``.
The token is the session's ``ws_token`` from its credentials, so a browser page can connect with what a stage is
given and never sees the API key. A browser on another origin (JupyterLab's) may call it: the route answers CORS
preflights; it carries no cookies.
"""

from __future__ import annotations

import hmac
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from akool_lab.sim._state import SimState

__all__ = ["shutdown_media", "webrtc_offer"]

_CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "POST, OPTIONS",
    "Access-Control-Allow-Headers": "content-type, x-api-key",
    "Access-Control-Max-Age": "600",
}
#: Largest offer accepted (a browser's offer with audio, video and a data channel is a few kilobytes).
MAX_SDP_BYTES = 64_000


def _answer(code: int, msg: str, data: Any = None, status: int = 200) -> JSONResponse:
    body: dict[str, Any] = {"code": code, "msg": msg}
    if data is not None:
        body["data"] = data
    return JSONResponse(body, status_code=status, headers=_CORS)


async def webrtc_offer(request: Request) -> Response:
    """POST /_sim/sessions/{session_id}/webrtc/offer: the session's avatar media (see the module's docstring)."""
    if request.method == "OPTIONS":
        return Response(status_code=204, headers=_CORS)
    state: SimState = request.app.state.sim
    try:
        body = await request.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        return _answer(1003, "body: expected a JSON object")
    session = state.sessions.get(request.path_params["session_id"])
    if session is None:
        return _answer(1003, "session_id: unknown session")
    token = body.get("token")
    key = request.headers.get("x-api-key")
    if isinstance(token, str) and token:
        allowed = hmac.compare_digest(token.encode(), session.ws_token.encode())
    elif key:
        allowed = hmac.compare_digest(key.encode(), state.api_key.encode())
    else:
        return _answer(1102, "Authorization is empty: send the session's ws_token as token, or x-api-key")
    if not allowed:
        return _answer(1101, "Invalid authorization: the token or API key was rejected")
    if body.get("type", "offer") != "offer":
        return _answer(1003, "type: expected 'offer'")
    sdp = body.get("sdp")
    if not isinstance(sdp, str) or not sdp.strip():
        return _answer(1003, "sdp: expected the offer's SDP text")
    if len(sdp.encode()) > MAX_SDP_BYTES:
        return _answer(1003, f"sdp: at most {MAX_SDP_BYTES} bytes")
    if session.status() in (3, 4):
        return _answer(1219, f"liveAvatar closed: session {session.id} has ended")
    try:
        from akool_lab.sim.media._peer import MediaPeer
    except ImportError as exc:
        return _answer(
            1500,
            f"the simulator's WebRTC media needs the media extra: pip install 'akool-lab[media]' ({exc})",
            status=501,
        )
    previous = session.media
    if previous is not None:
        await previous.close()
    peer = MediaPeer(state, session)
    session.media = peer
    try:
        sdp_answer = await peer.answer(sdp)
    except Exception as exc:
        await peer.close()
        return _answer(1003, f"sdp: the offer could not be answered ({type(exc).__name__}: {exc})")
    return _answer(1000, "OK", {"type": "answer", "sdp": sdp_answer})


async def shutdown_media(state: SimState) -> None:
    """Close every session's WebRTC peer (the server is stopping)."""
    for session in list(state.sessions.values()):
        peer = session.media
        if peer is not None:
            await peer.close()
