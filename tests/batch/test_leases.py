"""The mailbox lease in the shared journal database: one owner at a time, renewed while it works, taken over
once it expires, and a keeper that notices when its lease was lost."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from migrate.batch.shared import LeaseKeeper, SharedBatch
from tests.servers.postgres import Postgres


@pytest.fixture
def shared(postgres: Postgres) -> Iterator[SharedBatch]:
    store = SharedBatch(postgres.new_database("leases"))
    try:
        yield store
    finally:
        store.close()


def test_one_owner_at_a_time_until_it_lets_go(shared: SharedBatch) -> None:
    assert shared.acquire("b/anna", "host-a/1/t1", ttl=60)
    assert not shared.acquire("b/anna", "host-b/2/t2", ttl=60)
    assert shared.acquire("b/bo", "host-b/2/t2", ttl=60)  # another mailbox is free
    assert shared.acquire("b/anna", "host-a/1/t1", ttl=60)  # the owner may take it again (a redelivery to it)
    assert shared.renew("b/anna", "host-a/1/t1", ttl=60)
    assert not shared.renew("b/anna", "host-b/2/t2", ttl=60)
    owner, left = shared.holder("b/anna")
    assert owner == "host-a/1/t1" and 0 < left <= 60
    shared.release("b/anna", "host-b/2/t2")  # not the owner: nothing happens
    assert shared.holder("b/anna")[0] == "host-a/1/t1"
    shared.release("b/anna", "host-a/1/t1")
    assert shared.holder("b/anna") is None
    assert shared.acquire("b/anna", "host-b/2/t2", ttl=60)


def test_an_expired_lease_is_taken_over_and_its_old_owner_cannot_renew_it(shared: SharedBatch) -> None:
    assert shared.acquire("b/anna", "dead/1/t1", ttl=0.2)
    deadline = time.monotonic() + 30
    while shared.holder("b/anna")[1] > 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert shared.acquire("b/anna", "alive/2/t2", ttl=60)
    assert not shared.renew("b/anna", "dead/1/t1", ttl=60)
    assert shared.holder("b/anna")[0] == "alive/2/t2"


def test_workers_racing_for_a_mailbox_give_it_one_owner(postgres: Postgres) -> None:
    url = postgres.new_database("race")
    stores = [SharedBatch(url) for _ in range(8)]
    start = threading.Barrier(len(stores))
    won: list[str] = []

    def race(n: int) -> None:
        start.wait()
        if stores[n].acquire("b/anna", f"worker-{n}", ttl=60):
            won.append(f"worker-{n}")

    threads = [threading.Thread(target=race, args=(n,)) for n in range(len(stores))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for store in stores:
        store.close()
    assert len(won) == 1


def test_the_keeper_renews_and_tells_when_its_lease_was_lost(shared: SharedBatch) -> None:
    assert shared.acquire("b/anna", "me/1/t1", ttl=1.5)
    lost = threading.Event()
    with LeaseKeeper(shared.url, "b/anna", "me/1/t1", 1.5, on_lost=lost.set) as keeper:
        def renewed() -> float:
            return float(shared._exec("SELECT renewed FROM leases WHERE mailbox='b/anna'")[0][0])

        first = renewed()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and renewed() == first:
            time.sleep(0.1)
        assert renewed() > first and not lost.is_set()
        shared._exec("UPDATE leases SET owner='thief/2/t2' WHERE mailbox='b/anna'")  # taken over
        assert lost.wait(30)
        assert keeper.lost


def test_a_tenants_slots_cap_its_mailboxes_across_workers(shared: SharedBatch) -> None:
    from migrate.batch.orders import tenant_slot

    def take(owner: str) -> str | None:
        return next((slot for slot in (tenant_slot("contoso.example", n) for n in range(2))
                     if shared.acquire(slot, owner, ttl=60)), None)

    first, second = take("w1/1/a"), take("w2/2/b")
    assert first and second and first != second
    assert take("w3/3/c") is None  # the third mailbox waits, whichever worker has it
    shared.release(first, "w1/1/a")
    assert take("w3/3/c") == first
    assert not shared.acquire(tenant_slot("contoso.example", 0), "b/anna", ttl=60)
    assert shared.acquire("b/anna", "w1/1/a", ttl=60)  # a mailbox lease is never a slot
