package connectors

// Example is the file `relay-git-sync connectors init` writes: every key
// explained, one entry per kind of remote. Its ids and urls are
// placeholders: valid, so the file loads and validates as it is, and
// Warnings points them out until they are replaced.
const Example = `# git_connectors.toml: which Relay shared folder goes to which git branch.
#
# relay-git-sync turns every snapshot of a shared folder into a commit and
# pushes it to each connector of the folder. It never force-pushes: when the
# branch has commits of its own (a README, CI config, someone else's push),
# it merges, keeping every file the folder never had.
#
# Check this file with:  relay-git-sync connectors validate
# See how pushing goes:   relay-git-sync connectors status

[[git_connector]]
# The shared folder (required): its relay and its own id, both UUIDs.
relay_id         = "6ba7b810-9dad-11d1-80b4-00c04fd430c8"
shared_folder_id = "f47ac10b-58cc-4372-a567-0e02b2c3d479"
# The remote (required). SSH uses the key in SSH_PRIVATE_KEY; add its public
# half (relay-git-sync ssh show-pubkey) as a deploy key with write access.
# Host keys are checked against <data-dir>/known_hosts, which starts with
# github.com, gitlab.com and bitbucket.org.
url              = "git@github.com:example/notes.git"
# Branch to update (default "main"); created if the remote lacks it.
branch           = "main"
# Kept for compatibility with the original relay-git-sync (default "origin").
remote_name      = "origin"
# Directory of the repository the folder's files go to (default "", the
# root). Everything else in the repository is left alone.
prefix           = "notes"

# A second remote for the same folder: HTTPS with a token from the
# environment (RELAY_GIT_HTTPS_TOKEN, user RELAY_GIT_HTTPS_USERNAME or
# "x-access-token"), at the root of its own repository.
# [[git_connector]]
# relay_id         = "6ba7b810-9dad-11d1-80b4-00c04fd430c8"
# shared_folder_id = "f47ac10b-58cc-4372-a567-0e02b2c3d479"
# url              = "https://gitlab.com/example/notes-backup.git"

# A local backup: a bare repository on this machine (created with
# git init --bare), by absolute path or file:// URL.
# [[git_connector]]
# relay_id         = "6ba7b810-9dad-11d1-80b4-00c04fd430c8"
# shared_folder_id = "f47ac10b-58cc-4372-a567-0e02b2c3d479"
# url              = "/srv/backups/notes.git"
# branch           = "relay"

# A self-hosted SSH server: pin its host key in a file of its own, written
# with: ssh-keyscan -p 2222 git.example.com > /data/known_hosts.example
# [[git_connector]]
# relay_id         = "6ba7b810-9dad-11d1-80b4-00c04fd430c8"
# shared_folder_id = "f47ac10b-58cc-4372-a567-0e02b2c3d479"
# url              = "ssh://git@git.example.com:2222/team/wiki.git"
# prefix           = "relay"
# known_hosts      = "/data/known_hosts.example"
`
