/* stub: to be implemented */
#include "atr_search.h"
