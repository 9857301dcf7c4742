//! The RDS half of the slow states: `<DBInstance>` records of DescribeDBInstances,
//! CreateDBInstance and DeleteDBInstance answers, and the `deleting` record kept for a
//! DB moto has already forgotten.

use std::time::Instant;

use super::{
    Reported, Rewritten, Slow, Transition, form,
    xml::{self, Edits, Element},
};

impl Slow {
    /// One DB record of an answer, as the open window for it says.
    pub(super) fn rewrite_db_record(
        &self,
        view: Instant,
        doc: &str,
        record: &Element,
        edits: &mut Edits,
        reported: &mut Vec<Reported>,
    ) {
        let Some(id) = record.child_text(doc, "DBInstanceIdentifier") else {
            return;
        };
        let Some(window) = self.db_window(view, &id) else {
            return;
        };
        set_db_status(
            edits,
            doc,
            record,
            window.transition.state(),
            window.transition == Transition::DbCreating,
        );
        reported.push(Reported {
            resource: id,
            state: window.transition.state().to_owned(),
        });
    }

    /// A DescribeDBInstances answer: records with open windows rewritten, and on the
    /// last page (no `Marker`) of a listing, the `deleting` records moto no longer
    /// has, where the request's filters admit them.
    pub(super) fn rewrite_db_listing(
        &self,
        view: Instant,
        params: &[(String, String)],
        doc: &str,
        root: &Element,
        edits: &mut Edits,
        reported: &mut Vec<Reported>,
    ) {
        let listed: Vec<&Element> = db_records(root, "DescribeDBInstances").collect();
        for record in &listed {
            self.rewrite_db_record(view, doc, record, edits, reported);
        }
        let Some(result) = root.child("DescribeDBInstancesResult") else {
            return;
        };
        let targeted = form::get(params, "DBInstanceIdentifier").is_some();
        if targeted || result.child("Marker").is_some() {
            return;
        }
        let filters = form::filters(params, true);
        let listed_ids: Vec<String> = listed
            .iter()
            .filter_map(|r| r.child_text(doc, "DBInstanceIdentifier"))
            .map(|id| id.to_ascii_lowercase())
            .collect();
        let mut missing = String::new();
        for window in &self.windows {
            let Some(record) = &window.record else {
                continue;
            };
            if window.open_at(view)
                && !listed_ids.contains(&window.resource)
                && record_matches(record, &filters)
            {
                missing.push_str(record);
                reported.push(Reported {
                    resource: window.resource.clone(),
                    state: window.transition.state().to_owned(),
                });
            }
        }
        if missing.is_empty() {
            return;
        }
        match result.child("DBInstances") {
            Some(list) => edits.append(doc, list, &missing),
            None => edits.append(
                doc,
                result,
                &format!("<DBInstances>{missing}</DBInstances>"),
            ),
        }
    }

    /// moto's "not found" for a DB the proxy shows `deleting`, turned into the answer
    /// RDS gives: 200, the record, `deleting`, with moto's request id.
    pub(super) fn deleting_answer(
        &self,
        view: Instant,
        params: &[(String, String)],
        doc: &str,
        root: &Element,
        reported: &mut Vec<Reported>,
    ) -> Option<Rewritten> {
        let identifier = form::get(params, "DBInstanceIdentifier")?;
        let code = root.at(&["Error", "Code"])?.text(doc);
        if !code.starts_with("DBInstanceNotFound") {
            return None;
        }
        let window = self.db_window(view, identifier)?;
        let record = window.record.as_ref()?;
        let request_id = root
            .child_text(doc, "RequestId")
            .unwrap_or_else(|| "00000000-0000-0000-0000-fa017fa017fa".to_owned());
        reported.push(Reported {
            resource: window.resource.clone(),
            state: window.transition.state().to_owned(),
        });
        Some(Rewritten {
            status: 200,
            body: format!(
                // moto's layout: no declaration, one line.
                "<DescribeDBInstancesResponse xmlns=\"http://rds.amazonaws.com/doc/2014-10-31/\">\
                 <DescribeDBInstancesResult><DBInstances>{record}</DBInstances></DescribeDBInstancesResult>\
                 <ResponseMetadata><RequestId>{}</RequestId></ResponseMetadata>\
                 </DescribeDBInstancesResponse>",
                xml::escape(&request_id)
            ),
        })
    }
}

/// The `<DBInstance>` elements of an RDS answer to `action`: a describe's list or a
/// create's, modify's or delete's single record.
pub(super) fn db_records<'a>(root: &'a Element, action: &str) -> impl Iterator<Item = &'a Element> {
    let result = root.child(&format!("{action}Result"));
    let single = result.and_then(|r| r.child("DBInstance"));
    let listed = result
        .and_then(|r| r.child("DBInstances"))
        .into_iter()
        .flat_map(|list| list.children_named("DBInstance"));
    single.into_iter().chain(listed)
}

/// Sets a `<DBInstance>`'s status, and drops its `Endpoint` for `creating`.
pub(super) fn set_db_status(
    edits: &mut Edits,
    doc: &str,
    record: &Element,
    state: &str,
    no_endpoint: bool,
) {
    match record.child("DBInstanceStatus") {
        Some(status) => edits.set_text(status, state),
        None => edits.append(
            doc,
            record,
            &format!(
                "<DBInstanceStatus>{}</DBInstanceStatus>",
                xml::escape(state)
            ),
        ),
    }
    if no_endpoint && let Some(endpoint) = record.child("Endpoint") {
        edits.remove(endpoint);
    }
}

/// The `<DBInstance>` to list while `identifier` is `deleting`: DeleteDBInstance's own
/// answer, given the TagList of the last record moto showed if that answer has none
/// (pave's inventory finds DBs by their tags); failing both, a bare record.
pub(super) fn deleting_record(
    identifier: &str,
    answered: Option<String>,
    remembered: Option<&String>,
) -> String {
    let record = match answered {
        Some(answered) => with_tags_of(answered, remembered),
        None => remembered.cloned().unwrap_or_else(|| {
            format!(
                "<DBInstance><DBInstanceIdentifier>{}</DBInstanceIdentifier></DBInstance>",
                xml::escape(identifier)
            )
        }),
    };
    let Some(root) = xml::parse(&record) else {
        return record;
    };
    let mut edits = Edits::default();
    set_db_status(
        &mut edits,
        &record,
        &root,
        Transition::DbDeleting.state(),
        false,
    );
    edits.apply(&record)
}

/// `record`, with `remembered`'s TagList if it has no tags of its own.
fn with_tags_of(record: String, remembered: Option<&String>) -> String {
    let tags = |doc: &str, root: &Element| {
        root.child("TagList")
            .filter(|list| !list.children.is_empty())
            .map(|list| doc[list.span.clone()].to_owned())
    };
    let Some(root) = xml::parse(&record) else {
        return record;
    };
    if tags(&record, &root).is_some() {
        return record;
    }
    let Some(remembered_tags) =
        remembered.and_then(|r| xml::parse(r).and_then(|root| tags(r, &root)))
    else {
        return record;
    };
    let mut edits = Edits::default();
    match root.child("TagList") {
        Some(empty) => edits.replace(empty.span.clone(), remembered_tags),
        None => edits.append(&record, &root, &remembered_tags),
    }
    edits.apply(&record)
}

/// Whether a `<DBInstance>` passes DescribeDBInstances' `Filters`. Filters this does
/// not know admit nothing: a record the proxy cannot vouch for is not shown.
fn record_matches(record: &str, filters: &[form::Filter]) -> bool {
    let Some(root) = xml::parse(record) else {
        return false;
    };
    filters.iter().all(|filter| {
        let fields: &[&str] = match filter.name.as_str() {
            "db-instance-id" => &["DBInstanceIdentifier", "DBInstanceArn"],
            "dbi-resource-id" => &["DbiResourceId"],
            "engine" => &["Engine"],
            "db-cluster-id" => &["DBClusterIdentifier"],
            _ => return false,
        };
        fields.iter().any(|field| {
            root.child_text(record, field)
                .is_some_and(|value| filter.values.contains(&value))
        })
    })
}
