//! (being written: the mattermost fake)
