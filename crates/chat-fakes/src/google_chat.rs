//! (being written: the google_chat fake)
