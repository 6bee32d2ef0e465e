"""The single owner function: allocation rules beat tags, tags are read as allocation defines them (any case,
trimmed, through the key aliases; a misspelt key is not a team tag), and what neither names is unallocated."""

from __future__ import annotations

from finops_allocation.rules import FACET_FIELDS, UNALLOCATED, Owner, RuleSet, owner_of

RULES = RuleSet.model_validate(
    {
        "rules": [
            {"name": "db-to-data", "priority": 10, "match": [{"field": "service_category", "value": "Databases"}],
             "assign": {"team": "data", "cost_center": "CC-200"}},
            {"name": "late-db", "priority": 50, "match": [{"field": "service_category", "value": "Databases"}],
             "assign": {"team": "never"}},
        ]
    }
)  # fmt: skip


def facet(**values: str) -> dict[str, str | None]:
    return {f: values.get(f) for f in FACET_FIELDS}


def test_a_rule_beats_the_team_tag_and_names_its_cost_center():
    owner = owner_of(facet(service_category="Databases"), {"team": "web"}, RULES)
    assert owner == Owner(team="data", cost_center="CC-200", decided_by="rule:db-to-data")


def test_without_a_matching_rule_the_team_tag_decides():
    owner = owner_of(facet(service_category="Compute"), {"team": "web"}, RULES)
    assert owner == Owner(team="web", cost_center=None, decided_by="tag:team")


def test_team_tag_keys_match_any_case_spacing_and_alias():
    for tags in ({" Team ": "web"}, {"TEAM": "web"}, {"owner-team": "web"}, {"Owner_Team": "web"}, {"squad": "web"}):
        assert owner_of(facet(), tags, RuleSet()).team == "web", tags


def test_a_misspelt_team_key_or_blank_value_is_not_an_owner():
    for tags in ({"teem": "web"}, {"team": "   "}, {"application": "shop"}, {}):
        assert owner_of(facet(), tags, RuleSet()) == Owner(team=UNALLOCATED, cost_center=None, decided_by=UNALLOCATED)


def test_a_tag_cost_center_is_not_reported_as_a_rule_cost_center():
    owner = owner_of(facet(), {"team": "web", "cost_center": "CC-1"}, RuleSet())
    assert (owner.team, owner.cost_center) == ("web", None)
