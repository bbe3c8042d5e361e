"""``twin alerts``: four-level warnings with response plans; ``twin alerts ack``."""

from __future__ import annotations

import json

import click


def _jsonable(episodes) -> list[dict]:
    out = []
    for ep in episodes.to_dict("records"):
        rec = {}
        for k, v in ep.items():
            if hasattr(v, "isoformat"):
                v = v.isoformat() if v == v else None
            elif isinstance(v, float) and v != v:
                v = None
            elif k in ("trigger", "changes"):
                v = [[x.isoformat() if hasattr(x, "isoformat") else x for x in item] for item in v]
            rec[k] = v
        out.append(rec)
    return out


@click.command()
@click.argument("twin_dir", type=click.Path(file_okay=False))
@click.option("--at", default=None, help="Warnings active at this time (with zone).")
@click.option("--from", "start", default=None, help="Every warning from this time (with zone) ...")
@click.option("--to", "end", default=None, help="... to this time.")
@click.option("--policy", type=click.Path(dir_okay=False), default=None, help="A warning policy YAML (default: ours).")
@click.option("--record", is_flag=True, help="Store the warnings as issued (each episode once; later runs update it).")
@click.option("--issued", is_flag=True, help="List the warnings issued so far instead of evaluating.")
@click.option("--ack", "ack_id", type=int, default=None, help="Acknowledge the issued warning with this id.")
@click.option("--by", default=None, help="Who acknowledges (with --ack).")
def alerts(twin_dir, at, start, end, policy, record, issued, ack_id, by):
    """Four-level warnings (blue < yellow < orange < red) with a response plan per jurisdiction downstream.

    JSON on stdout. --record stores them as issued; --issued lists them; --ack ID --by NAME acknowledges one.
    """
    from twin.analysis import alerts as rules
    from twin.analysis import response
    from twin.basin import BasinTwin

    basin = BasinTwin.open(twin_dir)
    if ack_id is not None:
        if not by:
            raise rules.AlertInputError("--ack needs --by NAME: who acknowledges the warning")
        rec = response.acknowledge(basin.store, ack_id, by)
        click.echo(json.dumps({k: rec[k] for k in ("id", "level_name", "acknowledged_by", "acknowledged")}))
        return
    if issued:
        click.echo(json.dumps(response.issued(basin.store), ensure_ascii=False, default=str))
        return
    pol = rules.load_policy(policy) if policy else None
    episodes = response.warnings(basin.model, basin.store, at=at, start=start, end=end, policy=pol)
    records = _jsonable(episodes)
    if record and len(episodes):
        for rec, wid in zip(records, response.record(basin.store, episodes)):
            rec["id"] = wid
    click.echo(json.dumps(records, ensure_ascii=False, default=str))
