//! Producer ids: an idempotent producer's id must be unique across every cluster it may
//! write to through the fleet, so every InitProducerId without a transactional id is
//! answered by the cluster `default`, whichever broker the producer asked. A
//! transactional producer asks its transaction coordinator, which FindCoordinator already
//! placed in its transactional id's cluster, so that request goes on as it is.

use flotilla_raft::routes::DEFAULT_CLUSTER;
use kafka_protocol::messages::{InitProducerIdRequest, ResponseKind};

use super::{call, exchanged, Routed};
use crate::proxy::filter::Verdict;

pub(super) fn route(
    routed: Routed,
    own_cluster: &str,
    body: InitProducerIdRequest,
    version: i16,
) -> Verdict {
    if body.transactional_id.is_some() || own_cluster == DEFAULT_CLUSTER {
        return Verdict::Forward;
    }
    exchanged(async move {
        let default = routed.cluster(DEFAULT_CLUSTER)?;
        let answer = call(&default, version, &body).await?;
        Ok(ResponseKind::InitProducerId(answer))
    })
}
