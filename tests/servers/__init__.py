"""Real servers for tests and benchmarks, run in-process on 127.0.0.1 (any free port).

- `tests.servers.smtp.SMTPTestServer`: an aiosmtpd server whose handler answers 421, 451,
  550... or drops the connection for chosen recipients, and records every message it
  accepts (envelope and the exact bytes). Optional STARTTLS / implicit TLS and AUTH.
- `tests.servers.sendgrid.SendGridTestServer`: a threaded HTTP server that speaks SendGrid's
  `/v3/mail/send` (every body validated against SendGrid's own OpenAPI schema, copied in
  `tests/fixtures/sendgrid/`) and the suppression endpoints; it checks the bearer key,
  counts requests, and answers 202 with X-Message-Id, or, when scripted, 429 with
  X-RateLimit-Reset, 500, or a SendGrid-style 400.

Both are context managers and expose `settings_block()`: the newsletter.yaml block
(`smtp:` or `sendgrid:`) that points a sender at them:

    with SMTPTestServer() as server:
        server.handler.on("bob@example.com", "550 5.1.1 No such user")
        settings = dataclasses.replace(settings, backend="smtp",
                                       backend_options={"smtp": server.settings_block()})
"""
