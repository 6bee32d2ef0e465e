"""The purchase service (automation, Operate): buys approved commitments exactly once."""
