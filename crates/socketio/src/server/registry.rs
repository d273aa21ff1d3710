//! The namespaces of a server: declared ones by name, and dynamic ones
//! created on first connection from a parent's pattern (Node's
//! `io.of(regex | fn)`).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use socketio_proto::recovery::RecoveryConfig;

use super::middleware::ConnectRequest;
use super::namespace::{NamespaceRef, NamespaceState};
use super::HandlerSettings;
use crate::adapter::AdapterFactory;
use crate::locks::{read, write};
use crate::runtime::DynRuntime;

type Matcher = Arc<dyn Fn(&ConnectRequest) -> bool + Send + Sync>;

/// A listener of new namespaces ([`crate::SocketIo::on_namespace`]).
pub(crate) type NamespaceListener = Arc<dyn Fn(NamespaceRef) + Send + Sync>;

/// A dynamic namespace's parent: which names it accepts, and the template
/// (handler, middlewares) its children share.
struct Parent {
    matches: Matcher,
    template: Arc<NamespaceState>,
}

pub(crate) struct Registry {
    namespaces: RwLock<HashMap<String, Arc<NamespaceState>>>,
    parents: RwLock<Vec<Parent>>,
    recovery: Option<RecoveryConfig>,
    adapters: Arc<dyn AdapterFactory>,
    runtime: Arc<dyn DynRuntime>,
    /// What every namespace's handlers share.
    handlers: Arc<HandlerSettings>,
    /// Told of every namespace sockets can join, once each. Taken under
    /// `namespaces`' lock (always in that order), so a namespace created
    /// while a listener is added is reported exactly once.
    namespace_listeners: RwLock<Vec<NamespaceListener>>,
}

impl Registry {
    pub(crate) fn new(
        recovery: Option<RecoveryConfig>,
        adapters: Arc<dyn AdapterFactory>,
        runtime: Arc<dyn DynRuntime>,
        handlers: Arc<HandlerSettings>,
    ) -> Self {
        Registry {
            namespaces: RwLock::default(),
            parents: RwLock::default(),
            recovery,
            adapters,
            runtime,
            handlers,
            namespace_listeners: RwLock::default(),
        }
    }

    /// Calls `listener` with every namespace sockets can join now (not the
    /// parents of dynamic ones), then with each one created later.
    pub(crate) fn on_namespace(&self, listener: NamespaceListener) {
        let existing: Vec<_> = {
            let namespaces = write(&self.namespaces);
            write(&self.namespace_listeners).push(listener.clone());
            namespaces.values().cloned().collect()
        };
        for state in existing {
            listener(NamespaceRef { state });
        }
    }

    /// The listeners to tell of a namespace just created (called under
    /// `namespaces`' lock; they run after it is released).
    fn listeners_of_new(&self) -> Vec<NamespaceListener> {
        read(&self.namespace_listeners).clone()
    }

    fn announce(created: Option<(Arc<NamespaceState>, Vec<NamespaceListener>)>) {
        if let Some((state, listeners)) = created {
            for listener in listeners {
                listener(NamespaceRef {
                    state: state.clone(),
                });
            }
        }
    }

    /// The namespace `name`, declared on first use.
    pub(crate) fn of(&self, name: &str) -> Arc<NamespaceState> {
        if let Some(namespace) = read(&self.namespaces).get(name) {
            return namespace.clone();
        }
        let mut created = None;
        let namespace = write(&self.namespaces)
            .entry(name.to_owned())
            .or_insert_with(|| {
                let namespace = self.create(name, None);
                created = Some((namespace.clone(), self.listeners_of_new()));
                namespace
            })
            .clone();
        if let Some((created, _)) = &created {
            created.spawn_adapter(&*self.runtime, true);
        }
        Self::announce(created);
        namespace
    }

    /// Adds a parent of dynamic namespaces; its state is the template the
    /// children's handler and middlewares come from.
    pub(crate) fn add_parent(&self, label: &str, matches: Matcher) -> Arc<NamespaceState> {
        let template = self.create(label, None);
        template.spawn_adapter(&*self.runtime, true);
        write(&self.parents).push(Parent {
            matches,
            template: template.clone(),
        });
        template
    }

    /// The namespace a CONNECT asks for: a declared one, or a new child of
    /// the first parent whose pattern accepts the name.
    pub(crate) fn lookup(&self, request: &ConnectRequest) -> Option<Arc<NamespaceState>> {
        let name = request.namespace();
        if let Some(namespace) = read(&self.namespaces).get(name) {
            return Some(namespace.clone());
        }
        let template = read(&self.parents)
            .iter()
            .find(|parent| (parent.matches)(request))
            .map(|parent| parent.template.clone())?;
        let mut created = None;
        let child = write(&self.namespaces)
            .entry(name.to_owned())
            .or_insert_with(|| {
                let child = self.create(name, Some(template.clone()));
                template.add_child(child.clone());
                created = Some((child.clone(), self.listeners_of_new()));
                child
            })
            .clone();
        if let Some((created, _)) = &created {
            created.spawn_adapter(&*self.runtime, true);
        }
        Self::announce(created);
        Some(child)
    }

    /// Drops a dynamic child namespace once its last socket has left (Node's
    /// `cleanupEmptyChildNamespaces`, always on here: clients choosing
    /// names must not make the server keep namespaces without bound).
    pub(crate) fn remove_if_empty(&self, namespace: &Arc<NamespaceState>) {
        let Some(parent) = namespace.parent() else {
            return;
        };
        let mut namespaces = write(&self.namespaces);
        let registered = namespaces
            .get(namespace.name.as_str())
            .is_some_and(|current| Arc::ptr_eq(current, namespace));
        if registered && namespace.socket_count() == 0 {
            namespaces.remove(namespace.name.as_str());
            parent.remove_child(namespace);
            namespace.spawn_adapter(&*self.runtime, false);
        }
    }

    /// Puts a dynamic child back if it was dropped while a socket was
    /// joining it (between [`Registry::lookup`] and the socket's
    /// registration).
    pub(crate) fn keep(&self, namespace: &Arc<NamespaceState>) {
        let Some(parent) = namespace.parent() else {
            return;
        };
        let mut namespaces = write(&self.namespaces);
        // The same state comes back: its listeners (a namespace listener
        // registered some) are still there, so it is not announced again.
        if !namespaces.contains_key(namespace.name.as_str()) {
            namespaces.insert(namespace.name.to_string(), namespace.clone());
            parent.add_child(namespace.clone());
            // Its adapter was closed when it was dropped: start it again.
            namespace.spawn_adapter(&*self.runtime, true);
        }
    }

    /// The slow-handler watch of `namespace`'s handlers, if the server has
    /// one ([`crate::SocketIoConfig::slow_handler`]).
    pub(crate) fn watch(&self, namespace: &NamespaceState) -> Option<super::connection::Watch> {
        namespace
            .handlers
            .slow_handler
            .map(|limit| super::connection::Watch {
                limit,
                runtime: self.runtime.clone(),
            })
    }

    /// Every namespace sockets can join (no dynamic parent).
    pub(crate) fn namespaces(&self) -> Vec<Arc<NamespaceState>> {
        read(&self.namespaces).values().cloned().collect()
    }

    /// Every namespace, declared or created, and every dynamic parent.
    pub(crate) fn all(&self) -> Vec<Arc<NamespaceState>> {
        let mut all: Vec<_> = read(&self.namespaces).values().cloned().collect();
        all.extend(read(&self.parents).iter().map(|p| p.template.clone()));
        all
    }

    fn create(&self, name: &str, parent: Option<Arc<NamespaceState>>) -> Arc<NamespaceState> {
        NamespaceState::new(
            name,
            self.recovery.clone(),
            &*self.adapters,
            parent,
            self.runtime.clone(),
            self.handlers.clone(),
        )
    }
}
