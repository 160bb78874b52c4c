"""The load run: many users syncing at once with the real Anki client, each with two devices
taking turns to change and sync, for a while; then every user's devices settle and are
compared with each other and with a fresh download. Reported: syncs made, errors, users whose
collections differ. Every user logs in once, from the same address (like a school behind NAT).
"""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path
from typing import Any

from harness import Device, Server, add_notes, change_round, left_behind, new_device, wait_past_ids

import anki_client as ac  # noqa: E402


def run_load(root: Path, *, users: int, secs: float, seed: int) -> dict[str, Any]:
    names = {f"load{i:03d}": f"pw-{i}" for i in range(users)}
    server = Server(root / "server", names)
    server.start()
    devices_dir = root / "devices"
    devices_dir.mkdir(parents=True)
    lock = threading.Lock()
    result: dict[str, Any] = {"users": users, "secs": secs, "syncs": 0, "errors": 0, "users_differing": 0, "login_errors": 0,
                              "notes": []}

    def note(kind: str, text: str) -> None:
        with lock:
            result[kind] += 1
            result["notes"].append(text[:500])

    def user_run(i: int, user: str, pw: str) -> None:
        rng = random.Random(f"{seed}-{i}")
        devices: list[Device] = []
        try:
            from anki.collection import Collection

            folder = devices_dir / f"{user}-login"
            folder.mkdir()
            col = Collection(str(folder / "collection.anki2"))
            try:
                hkey = ac.login(col, server.url, user, pw).hkey
            except Exception as e:  # noqa: BLE001
                col.close(downgrade=False)
                note("errors", f"{user}: login: {e}")
                with lock:
                    result["login_errors"] += 1
                return
            a = Device(col, ac.make_auth(hkey, server.url), f"{user}-A")
            b = new_device(devices_dir, f"{user}-B", hkey, server.url)
            devices += [a, b]
            add_notes(a.col, f"{user} seed", 30, rng=rng)
            a.sync(prefer="upload")
            b.sync(prefer="download")
            deadline = time.monotonic() + secs
            turn = 0
            while time.monotonic() < deadline:
                dev = devices[turn % 2]
                wait_past_ids(a.col, b.col)
                if dev is a:
                    change_round(a.col, f"r{turn}", 40, rng)
                else:
                    add_notes(b.col, f"b{turn}", 10, rng=rng)
                try:
                    res = dev.sync()
                    with lock:
                        result["syncs"] += 1
                    if res.action not in ("normal", "none"):
                        note("errors", f"{dev.name}: {res}")
                except Exception as e:  # noqa: BLE001
                    note("errors", f"{dev.name} turn {turn}: {e}")
                turn += 1
            for dev in (a, b, a):
                dev.sync()
            fresh = new_device(devices_dir, f"{user}-C", hkey, server.url)
            devices.append(fresh)
            fresh.sync()
            snap = ac.snapshot(a.col)
            for other in (b, fresh):
                diff = ac.diff_snapshots(snap, ac.snapshot(other.col))
                if diff:
                    note("users_differing", f"{user}: A vs {other.name}:\n" + "\n".join(diff[:20]))
                    break
        except Exception as e:  # noqa: BLE001
            note("errors", f"{user}: {type(e).__name__}: {e}")
        finally:
            for dev in devices:
                dev.close()

    try:
        threads = [threading.Thread(target=user_run, args=(i, u, p)) for i, (u, p) in enumerate(names.items())]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        result["peak_rss_mb"] = round(server.rss_kb("VmHWM") / 1024, 1)
        result["left_behind"] = left_behind(server.base)
        result["exit_code"] = server.stop()
        return result
    finally:
        server.stop()
