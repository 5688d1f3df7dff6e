//! Every value of the small enums that records counted in millions hold, so that a snapshot
//! saves each as its place in the list (see [`crate::compact::listed`]) rather than as its name:
//! a name is read back as text, checked as UTF-8 and matched against every name.

use followfund_contracts::events::{
    ActivityType, AgeBand, Instrument, LongTermCondition, MeasureStage, PaymentLineKind,
    ReferralReason, ReferralSource,
};

use crate::compact::Listed;
use crate::journeys::{PrescriptionStatus, ReferralStatus};

/// Lists an enum's values for [`Listed`]; a value added to the enum and not to its list here
/// does not compile. Appending keeps old snapshots readable; reordering needs a new version.
macro_rules! listed {
    ($type:ident: $($variant:ident),+ $(,)?) => {
        impl Listed for $type {
            const ALL: &'static [$type] = &[$($type::$variant),+];
        }

        const _: fn($type) = |value| match value {
            $($type::$variant)|+ => {}
        };
    };
}

listed!(ReferralSource: GpPractice, Nurse, Pharmacist, Hospital, JobCentre, Housing, FireService,
    Charity, LocalAuthority, SelfReferral, Other);
listed!(ReferralReason: Loneliness, MentalWellbeing, LongTermCondition, PhysicalActivity,
    Financial, Housing, Employment, CarerSupport, Bereavement, Other);
listed!(AgeBand: Under18, From18To24, From25To39, From40To54, From55To64, From65To74, From75);
listed!(LongTermCondition: Diabetes, Copd, HeartDisease, Asthma, Depression, Anxiety, ChronicPain,
    Dementia, Obesity, Other);
listed!(ActivityType: Walking, Arts, Gardening, DebtAdvice, HousingAdvice, LunchClub, Exercise,
    Learning, Volunteering, PeerSupport, Other);
listed!(Instrument: Swemwbs, Wemwbs, Ons4, Gad7, Phq9, WellbeingStar);
listed!(MeasureStage: Baseline, FollowUp);
listed!(PaymentLineKind: Payment, Recovery);
listed!(ReferralStatus: Received, Accepted, Declined, Redirected, ReferredBack, Closed);
listed!(PrescriptionStatus: Waitlisted, Issued, Accepted, Declined, Completed, Ended);
