//! The ticket executor's own Redis key: a project's ticket → task map, under the engine's
//! prefix and the `tickets` queue's hash tag.

/// `P:{tickets}:ticket-map:<project>`: hash ticket id → its latest task id.
pub(crate) fn ticket_map(prefix: &str, project_id: &str) -> String {
    format!("{prefix}:{{{}}}:ticket-map:{project_id}", crate::QUEUE)
}
