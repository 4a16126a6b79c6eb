"""The v2 data-channel protocol, sans-IO (AKOOL_API.md sections 4, 5, 11 and 12).

Bytes in, messages out; messages in, bytes out. Nothing here touches a socket, an event loop or a clock: times are
integer nanoseconds passed in by the caller (``time.perf_counter_ns()``), and the pacer returns delays instead of
sleeping.

>>> from akool_lab.protocol import AGORA, Pacer, decode, encode_chat
>>> chunks = encode_chat("Hello " * 400, mid="m1", budget=AGORA)   # each <= 960 bytes
>>> pacer = Pacer(AGORA)
>>> delays = [pacer.delay_for(len(chunk), now=0) for chunk in chunks]
"""

from akool_lab.protocol._chunking import chat_envelope_bytes, encode_chat
from akool_lab.protocol._codec import decode, encode, new_mid
from akool_lab.protocol._commands import (
    ACTIONS,
    EXPRESSIONS,
    MODES,
    TURN_DETECTION_TYPES,
    VPARAMS_KEYS,
    encode_interrupt,
    encode_set_action,
    encode_set_params,
    validate_set_params,
)
from akool_lab.protocol._conversation import (
    AckMatched,
    AudioEvent,
    CommandUnacked,
    Conversation,
    ConversationEvent,
    ConversationReply,
    Ignored,
    OtherEvent,
    ReplyEnded,
    ReplyPiece,
    ServerError,
    UnmatchedAck,
    UserSpeech,
)
from akool_lab.protocol._messages import (
    ACK_OK,
    PROTOCOL_VERSION,
    Ack,
    ChatChunk,
    Command,
    Message,
    ServerEvent,
    Unknown,
)
from akool_lab.protocol._pacing import Pacer
from akool_lab.protocol.limits import (
    AGORA,
    LIVEKIT,
    LIVEKIT_UNPACED,
    PROVIDERS,
    TRTC,
    WEBSOCKET,
    ProviderBudget,
    budget_for,
)

__all__ = [
    "ACK_OK",
    "ACTIONS",
    "AGORA",
    "EXPRESSIONS",
    "LIVEKIT",
    "LIVEKIT_UNPACED",
    "MODES",
    "PROTOCOL_VERSION",
    "PROVIDERS",
    "TRTC",
    "TURN_DETECTION_TYPES",
    "VPARAMS_KEYS",
    "WEBSOCKET",
    "Ack",
    "AckMatched",
    "AudioEvent",
    "ChatChunk",
    "Command",
    "CommandUnacked",
    "Conversation",
    "ConversationEvent",
    "ConversationReply",
    "Ignored",
    "Message",
    "OtherEvent",
    "Pacer",
    "ProviderBudget",
    "ReplyEnded",
    "ReplyPiece",
    "ServerError",
    "ServerEvent",
    "Unknown",
    "UnmatchedAck",
    "UserSpeech",
    "budget_for",
    "chat_envelope_bytes",
    "decode",
    "encode",
    "encode_chat",
    "encode_interrupt",
    "encode_set_action",
    "encode_set_params",
    "new_mid",
    "validate_set_params",
]
