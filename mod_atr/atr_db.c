/* stub: to be implemented */
#include "atr_db.h"
