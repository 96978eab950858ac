//! Which connection is shed at the cap, and which never is.

use super::*;

fn ids(slots: &Slots, conn: &Arc<Conn>) -> bool {
    slots
        .oldest_stalled(Instant::now() + Duration::from_secs(5))
        .is_some_and(|v| Arc::ptr_eq(&v, conn))
}

#[tokio::test]
async fn the_oldest_never_served_connection_is_shed_first() {
    let slots = Slots::new(3, Duration::from_secs(1));
    let served = slots.acquire().await.unwrap();
    drop(begin(&served.conn));
    assert!(served.conn.activity.served());
    tokio::time::sleep(Duration::from_millis(5)).await;
    let trickling = slots.acquire().await.unwrap();
    let (_in_flight, _receiving) = begin(&trickling.conn);
    let silent = slots.acquire().await.unwrap();
    // Nothing is stalled for a second yet.
    assert!(slots.oldest_stalled(Instant::now()).is_none());
    // The trickling connection was accepted before the silent one: it goes first, and the
    // connection that has served a request goes last.
    assert!(ids(&slots, &trickling.conn));
    trickling.conn.shedding.store(true, Ordering::SeqCst);
    assert!(ids(&slots, &silent.conn));
    silent.conn.shedding.store(true, Ordering::SeqCst);
    assert!(ids(&slots, &served.conn));
}

#[tokio::test]
async fn a_request_being_answered_is_never_shed() {
    let slots = Slots::new(1, Duration::ZERO);
    let busy = slots.acquire().await.unwrap();
    let (_in_flight, receiving) = begin(&busy.conn);
    assert!(ids(&slots, &busy.conn), "receiving its body: stalled");
    drop(receiving);
    assert!(slots.oldest_stalled(Instant::now()).is_none());
}

#[tokio::test]
async fn at_the_cap_a_new_connection_gets_the_slot_of_a_shed_one() {
    let slots = Slots::new(1, Duration::ZERO);
    let held = slots.acquire().await.unwrap();
    let conn = Arc::clone(&held.conn);
    let holder = tokio::spawn(async move {
        conn.shed().await;
        drop(held);
    });
    let next = tokio::time::timeout(Duration::from_secs(5), slots.acquire())
        .await
        .unwrap();
    assert!(next.is_some());
    holder.await.unwrap();
    assert_eq!(slots.open(), 1);
}
