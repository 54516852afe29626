"""Signals sent by ``hyperid_mfa.services`` on every change of an MFA request.

Each is sent exactly once per event, even when many processes refresh the same
request at once: the services send them only after winning the conditional UPDATE
that makes the change. ``sender`` is the ``MFARequest`` class; every signal passes
``mfa_request`` (the updated instance).

- ``mfa_request_started``: a push was sent.
- ``mfa_request_status_changed``: also ``old_state`` and ``new_state`` (the
  ``MFARequest.state`` strings); sent for every transition out of pending.
- ``mfa_request_approved`` / ``mfa_request_denied``: the user answered on the phone.
- ``mfa_request_consumed``: an approval let its gated action run (once).

Two more say what leaves no change of a request behind:

- ``mfa_push_not_sent``: a push the app was asked to send did not go out (or may
  not have). ``sender`` is ``MFARequest``; arguments ``user``, ``action``,
  ``outcome`` (``"limited"``: the push limit; ``"cooldown"``: a denial just now;
  ``"failed"``: HyperID or the user's token failed) and ``error`` (the refusal or
  the :class:`~hyperid_mfa.exceptions.HyperIDError`).
- ``hyperid_call_finished``: one HTTP exchange with HyperID ended, each attempt of a
  retried call on its own. ``sender`` is ``HyperIDClient``; arguments ``call``
  (``"start"``, ``"status-get"``, ``"cancel"``, ``"availability"``, ``"token"``),
  ``result`` (``"success"``, HyperID's result name such as ``"token_expired"``, or
  how the exchange failed: ``"timeout"``, ``"unreachable"``, ``"http_5xx"``,
  ``"protocol_error"``...) and ``seconds``. Sent with ``send_robust``: a receiver
  that raises cannot fail the call.

Connect receivers in your ``AppConfig.ready()``::

    from django.dispatch import receiver
    from hyperid_mfa.signals import mfa_request_denied


    @receiver(mfa_request_denied)
    def alert_on_denial(sender, mfa_request, **kwargs):
        notify_security_team(mfa_request.user, mfa_request.action)
"""

from django.dispatch import Signal

mfa_request_started = Signal()
mfa_request_status_changed = Signal()
mfa_request_approved = Signal()
mfa_request_denied = Signal()
mfa_request_consumed = Signal()
mfa_push_not_sent = Signal()
hyperid_call_finished = Signal()
