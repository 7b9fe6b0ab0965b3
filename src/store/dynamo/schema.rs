//! Creates the table when it is missing (on-demand, TTL on, the sweeper's index and the
//! retention index), adds the retention index to a table made before it existed, and waits for
//! it to be usable. Safe to run from any number of instances at once, and again.
use super::keys::{DUE_AT, DUE_INDEX, DUE_PK, GC_AT, GC_INDEX, GC_PK, PK, SK, TTL};
use anyhow::{bail, Context};
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::create_table::CreateTableError;
use aws_sdk_dynamodb::operation::describe_table::DescribeTableError;
use aws_sdk_dynamodb::operation::update_table::UpdateTableError;
use aws_sdk_dynamodb::operation::update_time_to_live::UpdateTimeToLiveError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, CreateGlobalSecondaryIndexAction, GlobalSecondaryIndex,
    GlobalSecondaryIndexUpdate, IndexStatus, KeySchemaElement, KeyType, Projection, ProjectionType,
    ScalarAttributeType, TableDescription, TableStatus, TimeToLiveSpecification, TimeToLiveStatus,
};
use aws_sdk_dynamodb::Client;
use std::time::{Duration, Instant};

/// How long to wait for a new table (or its index) to become active.
const READY_WITHIN: Duration = Duration::from_secs(120);

fn key_element(name: &str, kind: KeyType) -> anyhow::Result<KeySchemaElement> {
    Ok(KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(kind)
        .build()?)
}

fn attribute(name: &str, kind: ScalarAttributeType) -> anyhow::Result<AttributeDefinition> {
    Ok(AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(kind)
        .build()?)
}

async fn describe(client: &Client, table: &str) -> anyhow::Result<Option<TableDescription>> {
    match client.describe_table().table_name(table).send().await {
        Ok(out) => Ok(out.table),
        Err(SdkError::ServiceError(e))
            if matches!(e.err(), DescribeTableError::ResourceNotFoundException(_)) =>
        {
            Ok(None)
        }
        Err(e) => Err(anyhow::Error::new(e))
            .with_context(|| format!("cannot describe DynamoDB table `{table}`")),
    }
}

fn all_attributes() -> anyhow::Result<Projection> {
    Ok(Projection::builder()
        .projection_type(ProjectionType::All)
        .build())
}

/// The sparse retention index: dead holds and idempotency records by age (see `keys`).
fn gc_index() -> anyhow::Result<GlobalSecondaryIndex> {
    Ok(GlobalSecondaryIndex::builder()
        .index_name(GC_INDEX)
        .key_schema(key_element(GC_PK, KeyType::Hash)?)
        .key_schema(key_element(GC_AT, KeyType::Range)?)
        .projection(all_attributes()?)
        .build()?)
}

fn has_index(d: &TableDescription, name: &str) -> bool {
    d.global_secondary_indexes()
        .iter()
        .any(|g| g.index_name() == Some(name))
}

/// Adds the retention index to a table created before it existed.
async fn add_gc_index(client: &Client, table: &str) -> anyhow::Result<()> {
    let g = gc_index()?;
    let create = CreateGlobalSecondaryIndexAction::builder()
        .index_name(GC_INDEX)
        .set_key_schema(Some(g.key_schema().to_vec()))
        .set_projection(g.projection().cloned())
        .build()?;
    let out = client
        .update_table()
        .table_name(table)
        .attribute_definitions(attribute(GC_PK, ScalarAttributeType::S)?)
        .attribute_definitions(attribute(GC_AT, ScalarAttributeType::N)?)
        .global_secondary_index_updates(
            GlobalSecondaryIndexUpdate::builder().create(create).build(),
        )
        .send()
        .await;
    match out {
        Ok(_) => Ok(()),
        // Another instance is adding it (or the table is busy): the wait below sees it through.
        Err(SdkError::ServiceError(e))
            if matches!(
                e.err(),
                UpdateTableError::ResourceInUseException(_)
                    | UpdateTableError::LimitExceededException(_)
            ) =>
        {
            Ok(())
        }
        Err(e) => Err(anyhow::Error::new(e))
            .with_context(|| format!("cannot add the `{GC_INDEX}` index to `{table}`")),
    }
}

async fn create(client: &Client, table: &str) -> anyhow::Result<()> {
    let due = GlobalSecondaryIndex::builder()
        .index_name(DUE_INDEX)
        .key_schema(key_element(DUE_PK, KeyType::Hash)?)
        .key_schema(key_element(DUE_AT, KeyType::Range)?)
        .projection(
            Projection::builder()
                .projection_type(ProjectionType::All)
                .build(),
        )
        .build()?;
    let out = client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attribute(PK, ScalarAttributeType::S)?)
        .attribute_definitions(attribute(SK, ScalarAttributeType::S)?)
        .attribute_definitions(attribute(DUE_PK, ScalarAttributeType::S)?)
        .attribute_definitions(attribute(DUE_AT, ScalarAttributeType::N)?)
        .attribute_definitions(attribute(GC_PK, ScalarAttributeType::S)?)
        .attribute_definitions(attribute(GC_AT, ScalarAttributeType::N)?)
        .key_schema(key_element(PK, KeyType::Hash)?)
        .key_schema(key_element(SK, KeyType::Range)?)
        .global_secondary_indexes(due)
        .global_secondary_indexes(gc_index()?)
        .send()
        .await;
    match out {
        Ok(_) => Ok(()),
        // Another instance created it first.
        Err(SdkError::ServiceError(e))
            if matches!(e.err(), CreateTableError::ResourceInUseException(_)) =>
        {
            Ok(())
        }
        Err(e) => Err(anyhow::Error::new(e))
            .with_context(|| format!("cannot create DynamoDB table `{table}`")),
    }
}

fn check_shape(d: &TableDescription, table: &str) -> anyhow::Result<()> {
    let keys: Vec<(&str, &KeyType)> = d
        .key_schema()
        .iter()
        .map(|k| (k.attribute_name(), k.key_type()))
        .collect();
    if keys != [(PK, &KeyType::Hash), (SK, &KeyType::Range)] {
        bail!("DynamoDB table `{table}` exists with another key schema ({keys:?}); expected pk/sk");
    }
    if !has_index(d, DUE_INDEX) {
        bail!("DynamoDB table `{table}` has no `{DUE_INDEX}` index; was it made by tablecast?");
    }
    Ok(())
}

fn ready(d: &TableDescription) -> bool {
    d.table_status() == Some(&TableStatus::Active)
        && d.global_secondary_indexes()
            .iter()
            .all(|g| g.index_status() == Some(&IndexStatus::Active))
}

/// Whether TTL is on, or being turned on, for `table`.
async fn ttl_on(client: &Client, table: &str) -> anyhow::Result<bool> {
    let status = client
        .describe_time_to_live()
        .table_name(table)
        .send()
        .await
        .with_context(|| format!("cannot read the TTL setting of DynamoDB table `{table}`"))?
        .time_to_live_description
        .and_then(|d| d.time_to_live_status);
    Ok(matches!(
        status,
        Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling)
    ))
}

async fn enable_ttl(client: &Client, table: &str) -> anyhow::Result<()> {
    if ttl_on(client, table).await? {
        return Ok(());
    }
    let spec = TimeToLiveSpecification::builder()
        .enabled(true)
        .attribute_name(TTL)
        .build()?;
    match client
        .update_time_to_live()
        .table_name(table)
        .time_to_live_specification(spec)
        .send()
        .await
    {
        Ok(_) => Ok(()),
        // Another instance is enabling it right now.
        Err(SdkError::ServiceError(e))
            if matches!(e.err(), UpdateTimeToLiveError::ResourceInUseException(_)) =>
        {
            Ok(())
        }
        // Another instance turned it on between the read and this call (DynamoDB answers
        // "TimeToLive is already enabled"): on is what was asked for.
        Err(_) if ttl_on(client, table).await.unwrap_or(false) => Ok(()),
        Err(e) => Err(anyhow::Error::new(e))
            .with_context(|| format!("cannot enable TTL on DynamoDB table `{table}`")),
    }
}

pub fn check_name(table: &str) -> anyhow::Result<()> {
    let valid = (3..=255).contains(&table.len())
        && table
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
    if !valid {
        return Err(crate::setting::bad(format!(
            "`{table}` is not a DynamoDB table name ([A-Za-z0-9_.-]{{3,255}})"
        )));
    }
    Ok(())
}

/// Creates `table` when missing, waits until it and its index are active, turns TTL on.
pub async fn ensure_table(client: &Client, table: &str) -> anyhow::Result<()> {
    check_name(table)?;
    if describe(client, table).await?.is_none() {
        tracing::info!(table, "creating DynamoDB table");
        create(client, table).await?;
    }
    let deadline = Instant::now() + READY_WITHIN;
    let mut asked = false;
    loop {
        match describe(client, table).await? {
            Some(d) if ready(&d) && !has_index(&d, GC_INDEX) && !asked => {
                check_shape(&d, table)?;
                tracing::info!(table, "adding the retention index to the DynamoDB table");
                add_gc_index(client, table).await?;
                asked = true;
            }
            Some(d) if ready(&d) && has_index(&d, GC_INDEX) => {
                check_shape(&d, table)?;
                break;
            }
            _ if Instant::now() > deadline => {
                bail!("DynamoDB table `{table}` did not become active within {READY_WITHIN:?}")
            }
            _ => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
    enable_ttl(client, table).await
}
