"""The notify service: routes platform events to the personas who must act on them, by email, Slack, Teams,
signed webhooks and a resumable server-sent event stream."""
