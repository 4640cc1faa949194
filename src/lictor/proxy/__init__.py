"""The OpenAI-compatible LLM proxy: every request, answer and proposed tool call decided by policy and
the decision carried out, streaming included, with upstream keys held by the gateway."""

from lictor.proxy.routes import APPROVAL_HEADER, PROXY_ROUTES, ChatProxy, mount_proxy
from lictor.proxy.stream import StreamGuard
from lictor.proxy.upstream import Upstream, Upstreams
from lictor.proxy.wire import ProxyError

__all__ = ["APPROVAL_HEADER", "PROXY_ROUTES", "ChatProxy", "ProxyError", "StreamGuard", "Upstream", "Upstreams", "mount_proxy"]
