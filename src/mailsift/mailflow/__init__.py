"""Mail direction and mail-flow (transport) rules.

``direction.classify`` says whether a message is inbound, outbound or internal;
``engine.evaluate`` is a pure function from typed rules and one message's facts to the rules
that matched; ``step.FlowStep`` applies them in the gateway's decision path (docs/mailflow.md,
docs/precedence.md step 9).
"""
