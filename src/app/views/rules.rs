//! Changes of the rules as the API and the pages make them: `App::change_rules`, then what the
//! service needs to use the new version at once (a new dispatch catalogue's segmenter).

use std::sync::Arc;

use domain::roles::Actor;
use domain::rules::RulesCommand;

use crate::app::AppState;
use crate::app::failure::Failure;
use crate::app::rules::RulesChange;

impl AppState {
    /// Records `command` by `actor` through `App::change_rules`; for a new dispatch catalogue,
    /// builds the reader of the catalogue now in force (its words in the segmenter's
    /// dictionary) on a blocking thread before answering, so the next suggestion finds it.
    ///
    /// # Errors
    /// As `App::change_rules`. A reader that cannot be built is logged, not answered: the
    /// change is recorded, and the next suggestion tries again.
    pub async fn change_rules_now(
        &self,
        actor: &Actor,
        command: &RulesCommand,
    ) -> Result<RulesChange, Failure> {
        let done = self.change_rules(actor, command).await?;
        if matches!(command, RulesCommand::SetCatalogue { .. }) {
            let catalogue = Arc::clone(self.rules.current().rules.current().catalogue());
            let built = tokio::task::spawn_blocking(move || {
                crate::dispatch::dispatch()?
                    .reader_for(&catalogue)
                    .map(|_| ())
            })
            .await;
            match built {
                Ok(Ok(())) => {}
                Ok(Err(err)) => {
                    tracing::error!(error = %format!("{err:#}"), "failed to build the new dispatch catalogue's segmenter");
                }
                Err(err) => {
                    tracing::error!(error = %err, "the dispatch catalogue's segmenter build did not finish");
                }
            }
        }
        Ok(done)
    }
}
