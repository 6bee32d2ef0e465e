"""The console service: read models of every topic, the practitioner dashboard and the public query API."""
