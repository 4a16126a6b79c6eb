"""The simulator as a WebRTC avatar (the ``media`` extra): speech synthesized offline, a face whose mouth follows it,
and a WebRTC peer (aiortc) that publishes both and can carry the v2 data channel.

Nothing here is imported by ``import akool_lab`` or ``import akool_lab.sim``: the simulator loads it when a client
first asks for media (``POST /_sim/sessions/{id}/webrtc/offer``).
"""
