"""The git variant of the deployments (deployments/prefect.git.yaml) on a real Prefect server:
deployed from a clone of a bare repository, run by a process worker in an empty directory on
"another machine", which clones the repository and checks out exactly the deployed commit even
after the branch moved on; the database URL comes from a Prefect Secret block."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from server_support import api, run_cli
from sqlalchemy import insert, select

from dunning.db import get_engine, upgrade
from dunning.db.models import WebhookInbox
from dunning.prefect_setup import local_server

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
GIT_FILE = ROOT / "deployments" / "prefect.git.yaml"


def _load(path: Path) -> dict[str, Any]:
    with path.open() as fh:
        return dict(yaml.safe_load(fh))


def _without_job_variables(deployments: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for dep in deployments:
        pool = {k: v for k, v in dep["work_pool"].items() if k != "job_variables"}
        out.append({**dep, "work_pool": pool})
    return out


def test_the_git_variant_deploys_the_same_deployments_as_prefect_yaml() -> None:
    local, remote = _load(ROOT / "prefect.yaml"), _load(GIT_FILE)
    assert _without_job_variables(remote["deployments"]) == _without_job_variables(
        local["deployments"]
    )
    # Same settings for the flow processes, plus the database URL from a Secret block.
    local_env = local["definitions"]["work_pools"]["dunning"]["job_variables"]["env"]
    remote_env = remote["definitions"]["work_pools"]["dunning"]["job_variables"]["env"]
    assert local_env.items() <= remote_env.items()
    secrets = {k: v for k, v in remote_env.items() if "prefect.blocks.secret." in v}
    assert secrets == {"DUNNING_DATABASE_URL": "{{ prefect.blocks.secret.dunning-database-url }}"}
    [clone] = remote["pull"]
    assert clone["prefect.deployments.steps.git_clone"]["commit_sha"] == (
        "{{ deployed-commit.stdout }}"
    )


def _git(*args: str, cwd: Path | None = None) -> str:
    done = subprocess.run(
        ["git", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
        env={
            **os.environ,
            "GIT_AUTHOR_NAME": "t",
            "GIT_AUTHOR_EMAIL": "t@t",
            "GIT_COMMITTER_NAME": "t",
            "GIT_COMMITTER_EMAIL": "t@t",
        },
    )
    return done.stdout.strip()


def test_a_worker_elsewhere_runs_the_deployed_commit_from_a_bare_repository(tmp_path: Path) -> None:
    # The repository "on the git server", and the operator's checkout of it.
    origin = tmp_path / "origin.git"
    _git("clone", "--quiet", "--bare", str(ROOT), str(origin))
    checkout = tmp_path / "checkout"
    _git("clone", "--quiet", str(origin), str(checkout))
    deployed = _git("rev-parse", "HEAD", cwd=checkout)

    db_url = f"sqlite:///{tmp_path / 'dunning.db'}"
    upgrade(db_url)
    with get_engine(db_url).begin() as conn:
        conn.execute(
            insert(WebhookInbox).values(
                provider="sendgrid",
                event_id="ev-git-1",
                event_type="delivered",
                payload=json.dumps({"event": "delivered", "sg_event_id": "ev-git-1"}),
                status="pending",
                received_at=dt.datetime.now(dt.UTC),
            )
        )

    with local_server(tmp_path / "prefect") as env:
        env["DUNNING_GIT_REPOSITORY"] = str(origin)
        run_cli(
            [str(BIN / "prefect"), "work-pool", "create", "dunning", "--type", "process"], env, ROOT
        )
        run_cli(
            [
                str(BIN / "python"),
                "-c",
                "import sys; from prefect.blocks.system import Secret; "
                "Secret(value=sys.argv[1]).save('dunning-database-url')",
                db_url,
            ],
            env,
            ROOT,
        )
        run_cli(
            [
                str(BIN / "prefect"),
                "--no-prompt",
                "deploy",
                "--name",
                "track-responses",
                "--prefect-file",
                str(GIT_FILE),
            ],
            env,
            checkout,
        )

        # The branch moves on after the deploy, with a flow that cannot even be imported: the
        # worker must still run the deployed commit.
        broken = checkout / "flows" / "track_responses.py"
        broken.write_text('raise SystemExit("the branch head ran, not the deployed commit")\n')
        _git("add", "flows/track_responses.py", cwd=checkout)
        _git("commit", "--quiet", "-m", "later", cwd=checkout)
        _git("push", "--quiet", "origin", "HEAD", cwd=checkout)
        assert _git("rev-parse", "HEAD", cwd=origin) != deployed

        dep = api(env, "GET", "/deployments/name/track-responses/track-responses")
        # Prefect resolves a Secret block reference when deploying: the value is stored on the
        # server with the deployment (docs/prefect.md says so), never in the yaml or in git.
        assert dep["job_variables"]["env"]["DUNNING_DATABASE_URL"] == db_url
        [step] = dep["pull_steps"]
        assert step["prefect.deployments.steps.git_clone"]["commit_sha"] == deployed
        # "Another machine": an empty directory, no DUNNING_DATABASE_URL in the environment.
        # The run works there (not in a temporary directory) so the clone can be inspected.
        elsewhere = tmp_path / "worker"
        elsewhere.mkdir()
        run = api(
            env,
            "POST",
            f"/deployments/{dep['id']}/create_flow_run",
            {
                "parameters": {"poll_twilio": False},
                "state": {"type": "SCHEDULED"},
                "job_variables": {"working_dir": str(elsewhere)},
            },
        )

        worker_env = {k: v for k, v in env.items() if not k.startswith("DUNNING_")}
        worker_env["DUNNING_HOME"] = str(tmp_path / "worker-home")
        run_cli(
            [
                str(BIN / "prefect"),
                "worker",
                "start",
                "--pool",
                "dunning",
                "--type",
                "process",
                "--run-once",
            ],
            worker_env,
            elsewhere,
            timeout=300,
        )
        final = api(env, "GET", f"/flow_runs/{run['id']}")

    assert final["state"]["type"] == "COMPLETED", final["state"]
    [clone] = [p for p in elsewhere.iterdir() if (p / ".git").exists()]
    assert _git("rev-parse", "HEAD", cwd=clone) == deployed
    # The run used the database named by the Secret block: it applied the inbox row there.
    with get_engine(db_url).connect() as conn:
        status = conn.execute(select(WebhookInbox.status)).scalar_one()
    assert status != "pending"
