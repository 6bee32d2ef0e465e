-- Budgets per cost center, team, product or environment and billing period; an alert is published once per
-- budget, threshold and basis (actual or forecast).
CREATE TABLE budget (
    scope_kind           text        NOT NULL CHECK (scope_kind IN ('cost_center', 'team', 'product', 'environment')),
    scope                text        NOT NULL,
    billing_period_start timestamptz NOT NULL,
    currency             char(3)     NOT NULL,
    amount               numeric     NOT NULL CHECK (amount > 0),
    thresholds           numeric[]   NOT NULL DEFAULT '{0.8,1}',
    PRIMARY KEY (scope_kind, scope, billing_period_start, currency)
);

CREATE TABLE budget_alert_sent (
    scope_kind           text        NOT NULL,
    scope                text        NOT NULL,
    billing_period_start timestamptz NOT NULL,
    currency             char(3)     NOT NULL,
    threshold            numeric     NOT NULL,
    basis                text        NOT NULL,
    sent_at              timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (scope_kind, scope, billing_period_start, currency, threshold, basis)
);
