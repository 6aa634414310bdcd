"""The milter interface: Postfix/Sendmail ask mailsift about each message during SMTP.

``MilterListener`` (pymilter/libmilter) rebuilds the message from the callbacks, lets the
gateway scan and record it, and applies the strictest recipient action: add result headers,
quarantine (Postfix hold queue or mailsift's quarantine), reject 550 5.7.1, or tempfail 451.
"""

from mailsift.interfaces.milter.decision import MilterDecision, MilterService
from mailsift.interfaces.milter.server import MilterListener, parse_socket_spec

__all__ = ["MilterDecision", "MilterListener", "MilterService", "parse_socket_spec"]
